#!/usr/bin/env python3
"""Checks that `rust-version` (the MSRV) is true, so the Docker build and `cargo build --locked`
on the declared toolchain cannot drift apart again (issue 14).

Fails when:
  - a workspace member declares no `rust-version`, or one below the highest `rust_version` of
    the packages it depends on in the locked graph (`cargo metadata --locked`: every package
    reachable from it, for every target platform, normal, build and dev dependencies alike,
    since `cargo test` needs them too);
  - a `FROM rust:<tag>` of the Dockerfile is not pinned to a version, or is older than the
    highest `rust-version` of the workspace.

A `rust-version` above what the dependencies need is fine (the code itself may need it; clippy's
`incompatible_msrv` lint tells). Versions are read, not built: no other toolchain or image is
fetched.

  scripts/check_msrv.py [--metadata FILE] [--dockerfile FILE]
  scripts/check_msrv.py --self-test
"""

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_version(text):
    """`1.88` / `1.88.0` -> (1, 88, 0); None when `text` does not start with a version."""
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?(?![\d.])", text or "")
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def show(version):
    return ".".join(str(p) for p in version)


def short(version):
    """`(1, 88, 0)` -> `1.88`, the form Cargo.toml and image tags use."""
    return show(version[:2]) if version[2] == 0 else show(version)


def reachable(nodes, start):
    """Package ids reachable from `start` through the resolve graph, `start` excluded."""
    seen, todo = set(), [start]
    while todo:
        node = nodes.get(todo.pop())
        if node is None:
            continue
        for dep in node.get("deps", []):
            if dep["pkg"] not in seen and dep["pkg"] != start:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    return seen


def check_metadata(meta):
    """Returns (errors, notes, floor): `floor` is the toolchain the workspace needs, the highest
    of every member's `rust-version` and of what its dependencies need (None if nothing says)."""
    errors, notes = [], []
    packages = {p["id"]: p for p in meta["packages"]}
    if meta.get("resolve") is None:
        return ["cargo metadata has no resolve graph"], notes, None
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    declared = []
    for member_id in meta["workspace_members"]:
        member = packages[member_id]
        name = f"{member['name']} ({member['manifest_path']})"
        needs, by = None, []
        for pid in reachable(nodes, member_id):
            pkg = packages.get(pid)
            version = parse_version(pkg.get("rust_version") if pkg else None)
            if version is None:
                continue
            label = f"{pkg['name']} {pkg['version']}"
            if needs is None or version > needs:
                needs, by = version, [label]
            elif version == needs:
                by.append(label)
        if needs is not None:
            declared.append(needs)
        own_text = member.get("rust_version")
        own = parse_version(own_text)
        if own is None:
            errors.append(
                f"{name}: no rust-version, so clippy's incompatible_msrv cannot check it; set "
                f"it to at least \"{short(needs) if needs else 'the toolchain you build with'}\""
                + (f" (needed by {', '.join(sorted(by))})" if by else "")
                + " or to the workspace's"
            )
            continue
        declared.append(own)
        if needs is None:
            notes.append(f"{name}: rust-version {own_text}; no dependency declares one")
        elif own < needs:
            errors.append(
                f"{name}: rust-version = \"{own_text}\" but the locked dependencies need "
                f"{show(needs)} ({', '.join(sorted(by))}): raise rust-version to "
                f"\"{short(needs)}\" (and the Dockerfile's "
                f"rust image with it), or pin older dependencies in Cargo.lock"
            )
        else:
            extra = "" if own == needs else "; above the dependencies' floor (the code may need it)"
            notes.append(
                f"{name}: rust-version {own_text} >= {show(needs)} needed by "
                f"{', '.join(sorted(by))}{extra}"
            )
    return errors, notes, (max(declared) if declared else None)


FROM_RE = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)


def rust_images(dockerfile_text):
    """(line number, image reference) of every `FROM` whose image is `rust` (any registry)."""
    out = []
    for m in FROM_RE.finditer(dockerfile_text):
        ref = m.group(1)
        image = ref.split("@", 1)[0].split("/")[-1].split(":", 1)[0]
        if image == "rust":
            line = dockerfile_text.count("\n", 0, m.start(1)) + 1
            out.append((line, ref))
    return out


def check_dockerfile(text, path, msrv):
    errors, notes = [], []
    images = rust_images(text)
    if not images:
        errors.append(f"{path}: no `FROM rust:<version>...` build stage found")
    for line, ref in images:
        name = ref.split("@", 1)[0]
        tag = name.split("/")[-1].partition(":")[2]
        version = parse_version(tag)
        if version is None:
            errors.append(
                f"{path}:{line}: `{ref}` is not pinned to a Rust version "
                f"(use e.g. rust:{short(msrv) if msrv else '1.x'}-bookworm)"
            )
        elif msrv is not None and version < msrv:
            errors.append(
                f"{path}:{line}: builder image `{ref}` is Rust {show(version)}, below the "
                f"{show(msrv)} that rust-version and Cargo.lock need: `cargo build --locked` "
                f"would fail in it; use "
                f"rust:{short(msrv)}-bookworm or newer"
            )
        else:
            notes.append(f"{path}:{line}: `{ref}` >= rust-version {show(msrv) if msrv else '?'}")
    return errors, notes


def self_test():
    assert parse_version("1.88") == (1, 88, 0)
    assert parse_version("1.88.1") == (1, 88, 1)
    assert parse_version("1.88-bookworm") == (1, 88, 0)
    assert parse_version("1.88.0-slim-bookworm") == (1, 88, 0)
    assert parse_version("bookworm") is None
    assert parse_version("latest") is None
    assert parse_version(None) is None
    docker = (
        "# FROM rust:1.0 in a comment is not a stage\n"
        "FROM --platform=$BUILDPLATFORM docker.io/library/rust:1.87-bookworm AS build\n"
        "FROM rust AS bare\n"
        "FROM gcr.io/distroless/cc-debian12:nonroot\n"
    )
    assert [r for _, r in rust_images(docker)] == [
        "docker.io/library/rust:1.87-bookworm",
        "rust",
    ], rust_images(docker)
    errors, _ = check_dockerfile(docker, "Dockerfile", (1, 88, 0))
    assert len(errors) == 2 and "below" in errors[0] and "not pinned" in errors[1], errors
    errors, _ = check_dockerfile("FROM rust:1.90-slim AS b\n", "D", (1, 88, 0))
    assert errors == [], errors
    errors, _ = check_dockerfile("FROM debian:bookworm\n", "D", (1, 88, 0))
    assert errors and "no `FROM rust" in errors[0]

    def meta(root_rv, lib_rv):
        pkgs = [
            {"id": "root", "name": "app", "version": "0.1.0", "rust_version": root_rv,
             "manifest_path": "/w/Cargo.toml"},
            {"id": "inner", "name": "inner", "version": "0.1.0", "rust_version": lib_rv,
             "manifest_path": "/w/inner/Cargo.toml"},
            {"id": "a", "name": "a", "version": "1.0.0", "rust_version": "1.70"},
            {"id": "b", "name": "b", "version": "2.0.0", "rust_version": "1.88.0"},
            {"id": "c", "name": "c", "version": "3.0.0", "rust_version": None},
        ]
        nodes = [
            {"id": "root", "deps": [{"pkg": "inner"}, {"pkg": "a"}]},
            {"id": "inner", "deps": [{"pkg": "b"}]},
            {"id": "a", "deps": [{"pkg": "c"}]},
            {"id": "b", "deps": []},
            {"id": "c", "deps": [{"pkg": "a"}]},  # cycles through dev-deps do happen
        ]
        return {"packages": pkgs, "workspace_members": ["root", "inner"],
                "resolve": {"nodes": nodes}}

    errors, _, top = check_metadata(meta("1.88", "1.88"))
    assert errors == [] and top == (1, 88, 0), errors
    # The dependency of the internal crate counts for the root too.
    errors, _, _ = check_metadata(meta("1.85", "1.88"))
    assert len(errors) == 1 and errors[0].startswith("app ") and "b 2.0.0" in errors[0], errors
    errors, _, _ = check_metadata(meta("1.88", None))
    assert len(errors) == 1 and "inner" in errors[0] and "no rust-version" in errors[0], errors
    print("check_msrv self-test: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metadata", help="read this `cargo metadata` JSON instead of running cargo")
    ap.add_argument("--dockerfile", default=str(ROOT / "Dockerfile"))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return 0

    if args.metadata:
        meta = json.loads(Path(args.metadata).read_text())
    else:
        run = subprocess.run(
            ["cargo", "metadata", "--locked", "--format-version", "1"],
            cwd=ROOT, capture_output=True, text=True,
        )
        if run.returncode != 0:
            sys.stderr.write(run.stderr)
            print("check_msrv: `cargo metadata --locked` failed (is Cargo.lock up to date?)")
            return 1
        meta = json.loads(run.stdout)

    errors, notes, msrv = check_metadata(meta)
    dockerfile = Path(args.dockerfile)
    if dockerfile.exists():
        e, n = check_dockerfile(dockerfile.read_text(), dockerfile.name, msrv)
        errors += e
        notes += n
    else:
        errors.append(f"{dockerfile}: not found")

    for note in notes:
        print(f"check_msrv: {note}")
    for error in errors:
        print(f"check_msrv: ERROR: {error}")
    if errors:
        print(f"check_msrv: {len(errors)} problem(s)")
        return 1
    print("check_msrv: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
