//! `holdfast health`: asks a running holdfast (server or form) whether it is healthy or ready,
//! for container HEALTHCHECKs, systemd and scripts, where no curl may be installed. Exit 0 on a
//! 200 answer, 1 on any other answer, 3 when nothing answers.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The server to ask (default: HOLDFAST_ENDPOINT_URL, else http://127.0.0.1:9324).
    #[arg(long, env = "HOLDFAST_ENDPOINT_URL", default_value = "http://127.0.0.1:9324")]
    url: String,
    /// Ask /ready (taking requests: not shutting down, init scripts done) instead of /health.
    #[arg(long)]
    ready: bool,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
    /// For https: also trust the PEM certificate(s) in this file.
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "FILE")]
    ca_cert: Option<std::path::PathBuf>,
}

/// Longest answer read: the probes answer a word.
const MAX_ANSWER: u64 = 16 * 1024;

pub fn run(args: HealthArgs) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let path = if args.ready { "/ready" } else { "/health" };
    let answer = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(args.timeout.max(1)), ask(&args, path))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", args.timeout.max(1))))
    });
    match answer {
        Ok((200, body)) => {
            println!("{}", body.trim());
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("holdfast: {path} answered {status}: {}", body.trim());
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("holdfast: {}{path}: {error}", args.url.trim_end_matches('/'));
            ExitCode::from(3)
        }
    }
}

async fn ask(args: &HealthArgs, path: &str) -> Result<(u16, String), String> {
    let uri: http::Uri = args.url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("the URL must start with http:// or https://".into()),
    };
    let host = uri.host().ok_or("the URL has no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if https {
        let connector = tokio_rustls::TlsConnector::from(tls_config(args.ca_cert.as_deref())?);
        let name = rustls_pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
        let stream = connector.connect(name, stream).await.map_err(|e| e.to_string())?;
        exchange(stream, &request).await
    } else {
        exchange(stream, &request).await
    }
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        for certificate in rustls_pki_types::CertificateDer::pem_file_iter(path).map_err(|e| e.to_string())? {
            roots.add(certificate.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, request: &str) -> Result<(u16, String), String> {
    stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify; what was read by then is the answer.
    let _ = (&mut stream).take(MAX_ANSWER).read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {:?}", text.chars().take(80).collect::<String>()))?;
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    Ok((status, body))
}
