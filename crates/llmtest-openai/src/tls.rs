//! TLS for cloud APIs: rustls (TLS 1.2 and 1.3, the platform's root certificates through
//! rustls-platform-verifier) with ring as its crypto provider.

/// Makes ring the process's rustls crypto provider unless the program installed one of its
/// own; every HTTP client needs one. Calling it again does nothing.
pub(crate) fn provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err: another thread installed one first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_build_with_the_ring_provider() {
        super::provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        reqwest::Client::builder()
            .build()
            .expect("an HTTPS-capable client");
    }
}
