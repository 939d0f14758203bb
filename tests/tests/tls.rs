//! TLS and mutual TLS: certificates made with the system's `openssl` for the test.

use std::path::Path;
use std::process::Command;

use proto::v1 as pb;
use server::config::TlsConfig;
use tests::*;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed for this test: {e}"));
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=carbonx test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
        ),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap_or_else(|e| panic!("{e}"));
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn status(channel: Channel) -> Result<pb::MarketStatus, tonic::Status> {
    let mut c = Clients::new(channel, Some(token("ops")));
    c.market
        .get_market_status(pb::GetMarketStatusRequest {})
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_admit_only_the_right_clients() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap_or_else(|e| panic!("{e}"));
    certificates(&certs);
    let mut config = test_config(&dir.path().join("data"));
    config.tls = Some(TlsConfig {
        cert: certs.join("server.pem"),
        key: certs.join("server.key"),
        client_ca: Some(certs.join("ca.pem")),
    });
    let server = TestServer::start_with(config);
    let url = format!("https://{}", server.addr);
    let ca = Certificate::from_pem(read(&certs, "ca.pem"));

    // With the client certificate: served.
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca.clone())
        .domain_name("localhost")
        .identity(Identity::from_pem(
            read(&certs, "client.pem"),
            read(&certs, "client.key"),
        ));
    let channel = Channel::from_shared(url.clone())
        .unwrap_or_else(|e| panic!("{e}"))
        .tls_config(tls)
        .unwrap_or_else(|e| panic!("{e}"))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("mTLS connect: {e}"));
    let s = status(channel).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.phase, pb::Phase::Closed as i32);

    // Without a client certificate: refused by mutual TLS.
    let tls = ClientTlsConfig::new()
        .ca_certificate(ca)
        .domain_name("localhost");
    let refused = match Channel::from_shared(url)
        .unwrap_or_else(|e| panic!("{e}"))
        .tls_config(tls)
    {
        Ok(endpoint) => match endpoint.connect().await {
            Ok(channel) => status(channel).await.is_err(),
            Err(_) => true,
        },
        Err(_) => true,
    };
    assert!(refused, "a client without a certificate was served");

    // Plaintext to a TLS port: refused.
    let plain =
        Channel::from_shared(format!("http://{}", server.addr)).unwrap_or_else(|e| panic!("{e}"));
    let refused = match plain.connect().await {
        Ok(channel) => status(channel).await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "plaintext was served on the TLS port");
}
