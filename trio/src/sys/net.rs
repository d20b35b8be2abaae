//! Network calls that socket2 does not wrap (POSIX): `getaddrinfo` and `getnameinfo`, a
//! zero-timeout `poll` that tells whether a socket is ready right now, and Linux's
//! `IP_BIND_ADDRESS_NO_PORT`.
//!
//! The name lookups block (a lookup may take seconds): callers run them in a worker thread
//! unless the flags make them numeric-only.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// One `addrinfo` entry, IP addresses only.
#[derive(Debug)]
pub(crate) struct RawAddrInfo {
    pub(crate) family: libc::c_int,
    pub(crate) socktype: libc::c_int,
    pub(crate) protocol: libc::c_int,
    pub(crate) canonname: Option<String>,
    pub(crate) addr: SocketAddr,
}

/// What `getaddrinfo` or `getnameinfo` failed with: an `EAI_*` code and its message, or the
/// system error behind `EAI_SYSTEM`.
#[derive(Debug)]
pub(crate) enum GaiError {
    Gai(libc::c_int, String),
    System(io::Error),
}

fn gai_error(code: libc::c_int) -> GaiError {
    if code == libc::EAI_SYSTEM {
        return GaiError::System(io::Error::last_os_error());
    }
    // SAFETY: `gai_strerror` returns a pointer to a static, NUL-terminated message.
    let message = unsafe { CStr::from_ptr(libc::gai_strerror(code)) };
    GaiError::Gai(code, message.to_string_lossy().into_owned())
}

/// Converts a `sockaddr` of `len` bytes into an IP socket address (`None` for other families).
///
/// # Safety
/// `addr` points to `len` readable bytes of a `sockaddr` of the family it says.
unsafe fn to_socket_addr(addr: *const libc::sockaddr, len: libc::socklen_t) -> Option<SocketAddr> {
    if addr.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid `sockaddr`; the family says which struct it is, and
    // the length is checked against that struct's size before it is read.
    unsafe {
        match libc::c_int::from((*addr).sa_family) {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                let a = &*(addr as *const libc::sockaddr_in);
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let a = &*(addr as *const libc::sockaddr_in6);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// `getaddrinfo(host, service, hints)`; entries of families other than IPv4 and IPv6 are
/// skipped.
pub(crate) fn getaddrinfo(
    host: Option<&CStr>,
    service: Option<&CStr>,
    family: libc::c_int,
    socktype: libc::c_int,
    protocol: libc::c_int,
    flags: libc::c_int,
) -> Result<Vec<RawAddrInfo>, GaiError> {
    // SAFETY: an all-zero `addrinfo` is valid (null pointers, zero fields).
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_protocol = protocol;
    hints.ai_flags = flags;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and outlive the call; `hints` and `list` are
    // valid for the call.
    let code = unsafe {
        libc::getaddrinfo(
            host.map_or(std::ptr::null(), CStr::as_ptr),
            service.map_or(std::ptr::null(), CStr::as_ptr),
            &hints,
            &mut list,
        )
    };
    if code != 0 {
        return Err(gai_error(code));
    }
    let mut out = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list `getaddrinfo` returned, not freed yet.
        let info = unsafe { &*entry };
        // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a `sockaddr` (or is null).
        if let Some(addr) = unsafe { to_socket_addr(info.ai_addr, info.ai_addrlen) } {
            let canonname = (!info.ai_canonname.is_null()).then(|| {
                // SAFETY: a non-null `ai_canonname` is a NUL-terminated string of the list.
                unsafe { CStr::from_ptr(info.ai_canonname) }
                    .to_string_lossy()
                    .into_owned()
            });
            out.push(RawAddrInfo {
                family: info.ai_family,
                socktype: info.ai_socktype,
                protocol: info.ai_protocol,
                canonname,
                addr,
            });
        }
        entry = info.ai_next;
    }
    // SAFETY: `list` came from a successful `getaddrinfo` and is freed once; nothing above
    // keeps a pointer into it.
    unsafe { libc::freeaddrinfo(list) };
    Ok(out)
}

/// `getnameinfo(addr, flags)`: the host and service names.
pub(crate) fn getnameinfo(
    addr: &SocketAddr,
    flags: libc::c_int,
) -> Result<(String, String), GaiError> {
    let sockaddr = socket2::SockAddr::from(*addr);
    let mut host = [0 as libc::c_char; 1025];
    let mut service = [0 as libc::c_char; 32];
    // SAFETY: `sockaddr` is a valid address of `len()` bytes; the buffers are writable for
    // the lengths given, and `getnameinfo` NUL-terminates what it writes.
    let code = unsafe {
        libc::getnameinfo(
            sockaddr.as_ptr().cast(),
            sockaddr.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            service.as_mut_ptr(),
            service.len() as libc::socklen_t,
            flags,
        )
    };
    if code != 0 {
        return Err(gai_error(code));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings.
    let (host, service) = unsafe {
        (
            CStr::from_ptr(host.as_ptr()),
            CStr::from_ptr(service.as_ptr()),
        )
    };
    Ok((
        host.to_string_lossy().into_owned(),
        service.to_string_lossy().into_owned(),
    ))
}

/// A C string of `s`, or `None` if it has a NUL byte.
pub(crate) fn c_string(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

/// Whether `fd` is ready for reading (`writing` false) or writing right now: `poll(2)` with a
/// zero timeout. An error or hang-up counts as ready (the next call reports it).
pub(crate) fn ready_now(fd: std::os::fd::RawFd, writing: bool) -> io::Result<bool> {
    let events = if writing { libc::POLLOUT } else { libc::POLLIN };
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid `pollfd` on the stack, and its count.
        let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
        if n >= 0 {
            return Ok(n > 0 && pollfd.revents != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sets Linux's `IP_BIND_ADDRESS_NO_PORT` on `fd`: a bind to port 0 then leaves the port to
/// `connect`, so binding a source address does not use up an ephemeral port on its own.
#[cfg(target_os = "linux")]
pub(crate) fn set_bind_address_no_port(fd: std::os::fd::RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a pointer to a `c_int` on the stack and its size; the caller keeps `fd` open.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
