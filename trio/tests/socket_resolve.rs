//! `trio::socket::getaddrinfo` and `getnameinfo`: numeric hosts without a thread, names in a
//! worker, the custom resolver hook, and IDNA for non-ASCII names.

mod common;

use std::net::SocketAddr;
use std::rc::Rc;

use common::{assert_err, run};
use trio::socket::{
    AI_PASSIVE, AddrInfo, AddrInfoHints, HostnameResolver, LocalBoxFuture, LookupError,
    NI_NUMERICHOST, NI_NUMERICSERV, Type, getaddrinfo, getnameinfo, set_custom_hostname_resolver,
};

#[test]
fn numeric_hosts_resolve_at_once() {
    run(async {
        let found = getaddrinfo(Some("127.0.0.1"), 8080, AddrInfoHints::stream()).await?;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].addr, "127.0.0.1:8080".parse::<SocketAddr>()?);
        assert_eq!(found[0].socket_type, Type::STREAM);
        let v6 = getaddrinfo(Some("::1"), 80, AddrInfoHints::stream()).await?;
        assert_eq!(v6[0].addr, "[::1]:80".parse::<SocketAddr>()?);
        // No host with AI_PASSIVE: the wildcard addresses.
        let any = getaddrinfo(None, 0, AddrInfoHints::stream().with_flags(AI_PASSIVE)).await?;
        assert!(any.iter().any(|a| a.addr.ip().is_unspecified()));
        Ok(())
    });
}

#[test]
fn a_name_resolves_in_a_worker() {
    run(async {
        let found = getaddrinfo(Some("localhost"), 80, AddrInfoHints::stream()).await?;
        assert!(found.iter().all(|a| a.addr.ip().is_loopback()), "{found:?}");
        let (host, port) =
            getnameinfo("127.0.0.1:80".parse()?, NI_NUMERICHOST | NI_NUMERICSERV).await?;
        assert_eq!((host.as_str(), port.as_str()), ("127.0.0.1", "80"));
        Ok(())
    });
}

#[test]
fn an_unknown_name_is_a_lookup_error() {
    run(async {
        let e = getaddrinfo(Some("no-such-host.invalid"), 80, AddrInfoHints::stream())
            .await
            .unwrap_err();
        assert!(e.is::<LookupError>() || e.is::<std::io::Error>(), "{e:?}");
        Ok(())
    });
}

#[test]
fn a_cancelled_lookup_returns_at_once() {
    run(async {
        let scope = trio::CancelScope::new();
        scope.cancel();
        let done = scope
            .run(getaddrinfo(Some("localhost"), 80, AddrInfoHints::stream()))
            .await?;
        assert!(done.is_none());
        Ok(())
    });
}

struct Fixed;

impl HostnameResolver for Fixed {
    fn getaddrinfo(
        &self,
        host: Option<&str>,
        port: u16,
        _hints: AddrInfoHints,
    ) -> LocalBoxFuture<trio::Result<Vec<AddrInfo>>> {
        let host = host.map(str::to_string);
        Box::pin(async move {
            trio::lowlevel::checkpoint().await?;
            assert_eq!(host.as_deref(), Some("service.test"));
            Ok(vec![AddrInfo::new(
                SocketAddr::from(([10, 1, 2, 3], port)),
                Type::STREAM,
            )])
        })
    }

    fn getnameinfo(
        &self,
        _addr: SocketAddr,
        _flags: i32,
    ) -> LocalBoxFuture<trio::Result<(String, String)>> {
        Box::pin(async { Ok(("service.test".to_string(), "http".to_string())) })
    }
}

#[test]
fn a_custom_resolver_sees_names_but_not_numbers() {
    run(async {
        assert!(set_custom_hostname_resolver(Some(Rc::new(Fixed)))?.is_none());
        let found = getaddrinfo(Some("service.test"), 99, AddrInfoHints::stream()).await?;
        assert_eq!(found[0].addr, "10.1.2.3:99".parse::<SocketAddr>()?);
        // Numbers never reach it (it would fail the assertion on the host).
        let numeric = getaddrinfo(Some("192.0.2.1"), 1, AddrInfoHints::stream()).await?;
        assert_eq!(numeric[0].addr, "192.0.2.1:1".parse::<SocketAddr>()?);
        let name = getnameinfo("10.1.2.3:80".parse()?, 0).await?;
        assert_eq!(name.0, "service.test");
        assert!(set_custom_hostname_resolver(None)?.is_some());
        Ok(())
    });
}

#[test]
fn bad_host_names_are_usage_errors() {
    run(async {
        assert_err::<trio::UsageError, _>(
            getaddrinfo(Some("nul\0byte"), 80, AddrInfoHints::stream()).await,
        );
        Ok(())
    });
}

#[cfg(not(feature = "idna"))]
#[test]
fn a_non_ascii_name_without_the_idna_feature_is_a_usage_error() {
    run(async {
        let e = assert_err::<trio::UsageError, _>(
            getaddrinfo(Some("bücher.example"), 80, AddrInfoHints::stream()).await,
        );
        assert!(e.to_string().contains("idna"), "{e}");
        Ok(())
    });
}

#[cfg(feature = "idna")]
#[test]
fn a_non_ascii_name_reaches_the_resolver_idna_encoded() {
    struct Expect;
    impl HostnameResolver for Expect {
        fn getaddrinfo(
            &self,
            host: Option<&str>,
            port: u16,
            _: AddrInfoHints,
        ) -> LocalBoxFuture<trio::Result<Vec<AddrInfo>>> {
            // UTS #46: mapped to lower case, then Punycode (IDNA 2008: ß stays ß).
            assert_eq!(host, Some("xn--bcher-kva.example"));
            Box::pin(async move {
                Ok(vec![AddrInfo::new(
                    SocketAddr::from(([10, 0, 0, 1], port)),
                    Type::STREAM,
                )])
            })
        }
        fn getnameinfo(
            &self,
            _: SocketAddr,
            _: i32,
        ) -> LocalBoxFuture<trio::Result<(String, String)>> {
            Box::pin(async { Ok((String::new(), String::new())) })
        }
    }
    run(async {
        set_custom_hostname_resolver(Some(Rc::new(Expect)))?;
        let found = getaddrinfo(Some("BÜCHER.example"), 80, AddrInfoHints::stream()).await?;
        assert_eq!(found.len(), 1);
        Ok(())
    });
}
