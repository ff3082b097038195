//! TLS towards the broker: rustls with the `ring` provider, the CA file of
//! `mqtt.tls.ca_file` or the system roots, and a client certificate for
//! mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::options::{invalid, OptionsError};
use crate::config::TlsConfig;

/// The rustls client configuration of `mqtt.tls`: the CA file or the system
/// roots, and the client certificate for mutual TLS when one is given.
pub fn tls_client_config(tls: &TlsConfig) -> Result<ClientConfig, OptionsError> {
    // The client's own files first: they are the likelier mistake.
    let client_auth = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert_path), Some(key_path)) => {
            let key = read_key(key_path)?;
            Some((read_certs("mqtt.tls.client_cert_file", cert_path)?, key))
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "mqtt.tls.client_key_file",
                "a client certificate needs its key",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "mqtt.tls.client_cert_file",
                "a client key needs its certificate",
            ))
        }
    };
    let mut roots = RootCertStore::empty();
    if let Some(path) = &tls.ca_file {
        for cert in read_certs("mqtt.tls.ca_file", path)? {
            roots.add(cert).map_err(|e| OptionsError::Pem {
                key: "mqtt.tls.ca_file",
                path: path.clone(),
                what: "certificate",
                detail: e.to_string(),
            })?;
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(invalid(
                "mqtt.tls.ca_file",
                format!(
                    "not set, and no system root certificate was found ({}); install the system's CA certificates or name a CA file",
                    errors.join("; ")
                ),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("mqtt.tls", e.to_string()))?
        .with_root_certificates(roots);
    match client_auth {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key).map_err(|e| {
            invalid(
                "mqtt.tls.client_key_file",
                format!("does not fit the client certificate: {e}"),
            )
        }),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, OptionsError> {
    std::fs::read(path).map_err(|source| OptionsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, OptionsError> {
    let bytes = read(key, path)?;
    let pem = |detail: String| OptionsError::Pem {
        key,
        path: path.to_owned(),
        what: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no CERTIFICATE section found".to_owned()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, OptionsError> {
    const KEY: &str = "mqtt.tls.client_key_file";
    let bytes = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| OptionsError::Pem {
        key: KEY,
        path: path.to_owned(),
        what: "private key",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsable_or_missing_files_name_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let missing = dir.path().join("missing.pem");
        let cases = [
            (
                Some(&junk),
                None,
                None,
                "mqtt.tls.ca_file: ",
                "no CERTIFICATE",
            ),
            (
                None,
                Some(&junk),
                Some(&junk),
                "mqtt.tls.client_key_file: ",
                "private key",
            ),
            (
                None,
                Some(&junk),
                Some(&missing),
                "mqtt.tls.client_key_file: ",
                "cannot read",
            ),
            (
                None,
                Some(&missing),
                None,
                "mqtt.tls.client_key_file: ",
                "needs its key",
            ),
        ];
        for (ca, cert, key, prefix, needle) in cases {
            let tls = TlsConfig {
                enabled: true,
                ca_file: ca.cloned(),
                client_cert_file: cert.cloned(),
                client_key_file: key.cloned(),
            };
            let e = tls_client_config(&tls).expect_err(prefix).to_string();
            assert!(
                e.starts_with(prefix) && e.contains(needle),
                "{prefix} {needle}: {e}"
            );
        }
    }
}
