#!/usr/bin/env python3
"""Checks that the project's Markdown files refer only to things that exist (issue 14).

In every tracked `*.md` file:
  - a relative link `[text](path)` or `[text](path#anchor)` must name an existing file or
    directory (relative to the Markdown file), and its anchor a heading of the target
    (GitHub's heading ids); `(#anchor)` alone must name a heading of the same file;
  - a repository path in backticks, inline or in a fenced block (`docs/x.md`, `scripts/y.sh`,
    `testdata/...`, `deploy/...`: a word that starts with a tracked top-level directory and a
    slash), must exist, relative to the repository root; a Markdown file named alone in
    backticks (`limits.md`) must exist beside the Markdown file or at the root. Paths that git ignores (build outputs such as
    `fuzz/corpus/`) and templates (`<name>`, `*`, `{a,b}`, `$VAR`, `...`) are not checked.

In every other tracked text file (YAML comments, scripts, sources, help texts), a `docs/*.md`
path must exist too.

Links with a scheme (`https:`, `mailto:`) are not fetched: the network is not for CI.

  scripts/check_links.py [FILE.md ...]      # default: every tracked *.md
  scripts/check_links.py --self-test
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LINK_RE = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
FENCE_RE = re.compile(r"^([ \t]*)(```+|~~~+)[^\n]*\n(.*?)^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.MULTILINE)
TEMPLATE_CHARS = set("<>*{}$?[]")


def git_files(root):
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout.decode()
    return [f for f in out.split("\0") if f]


def top_level_dirs(files):
    return sorted({f.split("/", 1)[0] for f in files if "/" in f})


def ignored(root, rel):
    """True when git ignores `rel` (a build output or local data, not a tracked file)."""
    # A trailing slash tells git the path is a directory (`corpus/` patterns need it).
    run = subprocess.run(["git", "check-ignore", "-q", "--no-index", rel], cwd=root)
    return run.returncode == 0


def slug(heading):
    """GitHub's id for a heading: the rendered text, lower-cased, punctuation but `-` and `_`
    dropped, spaces turned into `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(text):
    """Every heading id of a Markdown text, with GitHub's `-1`, `-2` suffixes for repeats."""
    seen, out = {}, set()
    body = strip_fences(text)
    for m in HEADING_RE.finditer(body):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    for m in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
        out.add(m.group(1))
    return out


def strip_fences(text):
    """The text with fenced blocks blanked (line count kept), so links in code are not links."""
    return FENCE_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def line_of(text, offset):
    return text.count("\n", 0, offset) + 1


def path_tokens(code, dirs):
    """Repository paths named in a piece of code: tokens starting with a top-level directory."""
    if not dirs:
        return []
    pattern = re.compile(
        r"(?<![\w./~-])((?:%s)/[^\s`'\"()\[\],;|&>]*)" % "|".join(re.escape(d) for d in dirs)
    )
    out = []
    for m in pattern.finditer(code):
        token = m.group(1).rstrip(".:")
        token = re.sub(r":\d+(?::\d+)?$", "", token)  # file:line[:col]
        if any(c in TEMPLATE_CHARS for c in token) or "..." in token:
            continue
        out.append((m.start(1), token))
    return out


def check_file(root, md, dirs, anchor_cache):
    errors = []
    text = md.read_text(encoding="utf-8")
    rel_md = md.relative_to(root).as_posix()
    prose = strip_fences(text)

    def target_anchors(path):
        if path not in anchor_cache:
            anchor_cache[path] = anchors(path.read_text(encoding="utf-8"))
        return anchor_cache[path]

    links = [(m.start(1), m.group(1)) for m in LINK_RE.finditer(prose)]
    links += [(m.start(1), m.group(1)) for m in IMAGE_RE.finditer(prose)]
    links += [(m.start(1), m.group(1)) for m in REF_DEF_RE.finditer(prose)]
    # Links inside code spans are code, not links.
    spans = [(m.start(), m.end()) for m in CODE_SPAN_RE.finditer(prose)]
    for offset, target in links:
        if any(a <= offset < b for a, b in spans):
            continue
        if not target or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue
        path_part, _, fragment = target.partition("#")
        where = f"{rel_md}:{line_of(prose, offset)}"
        if path_part:
            dest = (md.parent / path_part).resolve()
            if not dest.exists():
                errors.append(f"{where}: link to {target!r}: {path_part} does not exist")
                continue
        else:
            dest = md
        if fragment and dest.is_file() and dest.suffix == ".md":
            if fragment not in target_anchors(dest):
                errors.append(
                    f"{where}: link to {target!r}: no heading #{fragment} in "
                    f"{dest.relative_to(root).as_posix() if dest != md else 'this file'}"
                )

    codes = [(m.start(2), m.group(2)) for m in CODE_SPAN_RE.finditer(prose)]
    for start, code in codes:
        name = code.strip()
        if re.fullmatch(r"[\w.-]+\.md", name):
            if not ((md.parent / name).exists() or (root / name).exists()):
                errors.append(f"{rel_md}:{line_of(prose, start)}: `{name}` does not exist")
    # Offsets into `prose` (fences blanked) and into `text` count lines alike, not characters.
    codes = [(prose, start, code) for start, code in codes]
    codes += [(text, m.start(3), m.group(3)) for m in FENCE_RE.finditer(text)]
    for source, start, code in codes:
        for offset, token in path_tokens(code, dirs):
            if (root / token).exists() or ignored(root, token):
                continue
            line = line_of(source, start + offset)
            errors.append(f"{rel_md}:{line}: `{token}` does not exist")
    return errors


DOCS_PATH_RE = re.compile(r"(?<![\w./-])(docs/[\w./-]*\.md)\b")


def check_other(root, rel):
    """`docs/*.md` paths named by a tracked file that is not Markdown."""
    try:
        text = (root / rel).read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []  # binary, or not a file
    return [
        f"{rel}:{line_of(text, m.start(1))}: {m.group(1)} does not exist"
        for m in DOCS_PATH_RE.finditer(text)
        if not (root / m.group(1)).exists()
    ]


def run(root, files=None):
    tracked = git_files(root)
    dirs = [d for d in top_level_dirs(tracked) if d not in (".git",)]
    mds = [root / f for f in (files or [f for f in tracked if f.endswith(".md")])]
    errors, cache = [], {}
    for md in mds:
        if md.exists():
            errors += check_file(root, md, dirs, cache)
    if not files:
        me = Path(__file__).resolve()
        for rel in tracked:
            if not rel.endswith(".md") and (root / rel).resolve() != me:
                errors += check_other(root, rel)
    return len(mds), errors


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        (root / "docs").mkdir()
        (root / "scripts").mkdir()
        (root / "scripts" / "run.sh").write_text("")
        (root / ".gitignore").write_text("scripts/out/\n")
        (root / "docs" / "a.md").write_text(
            "# Title\n\n## Try it: `--apply` now\n\n## Try it: `--apply` now\n"
        )
        (root / "README.md").write_text(
            "See [a](docs/a.md), [b](docs/a.md#try-it---apply-now), "
            "[c](docs/a.md#try-it---apply-now-1), [d](#intro), [web](https://x.y/z).\n\n"
            "# Intro\n\n"
            "Run `scripts/run.sh --fast` or `scripts/run.sh:12`; outputs in `scripts/out/x`;\n"
            "per target `scripts/<name>.sh`; not a path: `a/scripts/x`, `` `[x](missing.md)` ``.\n\n"
            "```sh\nscripts/run.sh && cat docs/a.md\n```\n\n"
            "Broken: [e](docs/missing.md), [f](docs/a.md#nope), [g](#nope),\n"
            "`docs/gone.md`, `DESIGN.md`, `a.md` (beside it: no), `README.md`, and\n\n"
            "```\nbash scripts/gone.sh\n```\n"
        )
        (root / "docs" / "b.md").write_text("See `a.md` and `README.md`.\n")
        (root / "scripts" / "run.sh").write_text("# see docs/a.md and docs/nothere.md\n")
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        _, errors = run(root)
        got = sorted(e.split(": ", 1)[1] for e in errors)
        lines = sorted(int(e.split(":")[1]) for e in errors if e.startswith("README.md:"))
        assert lines == [12, 12, 12, 13, 13, 13, 16], lines
        want = sorted(
            [
                "link to 'docs/missing.md': docs/missing.md does not exist",
                "link to 'docs/a.md#nope': no heading #nope in docs/a.md",
                "link to '#nope': no heading #nope in this file",
                "`docs/gone.md` does not exist",
                "`scripts/gone.sh` does not exist",
                "`DESIGN.md` does not exist",
                "`a.md` does not exist",
                "docs/nothere.md does not exist",
            ]
        )
        assert got == want, "\n".join(got)
        assert slug("Try it with Prometheus") == "try-it-with-prometheus"
        assert slug("`--file` and `/analyze`: what to drop") == "--file-and-analyze-what-to-drop"
    print("check_links self-test: ok")


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return 0
    count, errors = run(ROOT, argv[1:] or None)
    for e in errors:
        print(f"check_links: ERROR: {e}")
    if errors:
        print(f"check_links: {len(errors)} broken reference(s) in {count} Markdown file(s)")
        return 1
    print(f"check_links: ok ({count} Markdown files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
