//! Binding the listen socket.
//!
//! The default address is the IPv6 wildcard `[::]` with `IPV6_V6ONLY` off: one socket that
//! accepts IPv6 clients and IPv4 clients (as IPv4-mapped addresses), as Go's `:8080` does, so
//! `curl http://[::1]:8080/` and `curl http://127.0.0.1:8080/` both reach it whatever the
//! system's `net.ipv6.bindv6only` says. On a host without IPv6 (the kernel refuses IPv6
//! sockets, or `::` is not available) it falls back to `0.0.0.0` and logs that it did. Any other
//! address is bound as given.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

/// Pending connections the kernel queues before `accept` (tokio's and std's default too).
const BACKLOG: i32 = 1024;

/// Binds `addr` for the server (see the module docs for `[::]`). Must be called inside a tokio
/// runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let dual_stack = addr.is_ipv6() && addr.ip().is_unspecified();
    if !dual_stack {
        return listen(socket_for(addr)?, addr);
    }
    let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
    let socket = match socket_for(addr) {
        Ok(s) => s,
        Err(e) => return fall_back(v4, &e),
    };
    // Both families on one socket, whatever the system default says.
    socket.set_only_v6(false)?;
    match listen(socket, addr) {
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => fall_back(v4, &e),
        r => r,
    }
}

fn fall_back(v4: SocketAddr, why: &io::Error) -> io::Result<TcpListener> {
    tracing::info!(error = %why, "no IPv6 on this host: listening on IPv4 only");
    listen(socket_for(v4)?, v4)
}

fn socket_for(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
}

fn listen(socket: Socket, addr: SocketAddr) -> io::Result<TcpListener> {
    // As tokio's and std's `bind` do on Unix: a restarted server can bind at once while
    // connections of the previous one are in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn explicit_addresses_are_bound_as_given() {
        let l = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let l6 = bind("[::1]:0".parse().unwrap()).unwrap();
        assert_eq!(l6.local_addr().unwrap().ip().to_string(), "::1");
        // The port is taken: an error, not a fallback to another address.
        let taken = l.local_addr().unwrap();
        assert_eq!(bind(taken).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }
}
