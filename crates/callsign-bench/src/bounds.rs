//! The physical limits the token path is compared with: the fastest signer on this machine
//! (`openssl speed`) and the crypto library callsign signs with (aws-lc-rs), each on one core.

use anyhow::{Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use std::process::Command;
use std::time::{Duration, Instant};

/// A message the size of an ACS token's signing input.
const MESSAGE: [u8; 900] = [b'x'; 900];

/// Signatures per second of `openssl speed -seconds S <algorithm>` on `cpus` (`taskset -c`), or
/// `None` when openssl (or taskset, when pinning) is not installed.
pub fn openssl_sign_rate(algorithm: &str, seconds: u32, cpus: Option<&str>) -> Option<f64> {
    let seconds = seconds.to_string();
    let speed = ["openssl", "speed", "-seconds", &seconds, algorithm];
    let output = match cpus {
        Some(cpus) => Command::new("taskset")
            .args(["-c", cpus])
            .args(speed)
            .output(),
        None => Command::new(speed[0]).args(&speed[1..]).output(),
    }
    .ok()?;
    if !output.status.success() {
        return None;
    }
    parse_openssl_speed(&String::from_utf8_lossy(&output.stdout), algorithm)
}

/// The sign/s column of the result line for `algorithm` (`rsa2048`, `ecdsap256`, `ed25519`).
pub fn parse_openssl_speed(output: &str, algorithm: &str) -> Option<f64> {
    let label = match algorithm {
        "rsa2048" => "rsa 2048 bits",
        "ecdsap256" => "ecdsa (nistp256)",
        "ed25519" => "EdDSA (Ed25519)",
        _ => return None,
    };
    let line = output
        .lines()
        .find(|l| l.contains(label) && !l.contains("Doing"))?;
    let numbers: Vec<&str> = line.split_whitespace().collect();
    // ... sign(s) verify(s) sign/s verify/s
    numbers.get(numbers.len().checked_sub(2)?)?.parse().ok()
}

/// The signing algorithms callsign can mint tokens with.
#[derive(Debug, Clone, Copy)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 SHA-256, 2048-bit key.
    Rs256,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

/// How many signatures per second aws-lc-rs makes on the calling thread (one core), with the key
/// parsed once and reused, as the server does.
pub fn library_sign_rate(alg: Alg, duration: Duration) -> Result<f64> {
    let rng = SystemRandom::new();
    let sign: Box<dyn Fn() -> Result<()>> = match alg {
        Alg::Rs256 => {
            let key = RsaKeyPair::generate(KeySize::Rsa2048).context("RSA key")?;
            let mut out = vec![0u8; key.public_modulus_len()];
            let out = std::cell::RefCell::new(std::mem::take(&mut out));
            Box::new(move || {
                key.sign(&RSA_PKCS1_SHA256, &rng, &MESSAGE, &mut out.borrow_mut())
                    .context("RSA sign")
            })
        }
        Alg::Es256 => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).context("EC key")?;
            Box::new(move || key.sign(&rng, &MESSAGE).map(|_| ()).context("ECDSA sign"))
        }
        Alg::EdDsa => {
            let key = Ed25519KeyPair::generate().context("Ed25519 key")?;
            Box::new(move || {
                let _signature = key.sign(&MESSAGE);
                Ok(())
            })
        }
    };
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        for _ in 0..8 {
            sign()?;
        }
        count += 8;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// How many small write + fsync (`sync_data`) rounds per second a file in `dir` takes: the bound
/// on durable commits, which group commit spreads over every write of a batch.
pub fn fsync_rate(dir: &std::path::Path, duration: Duration) -> Result<f64> {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).context("creating the fsync probe")?;
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < duration {
        file.write_all(&[0u8; 4096])?;
        file.sync_data()?;
        count += 1;
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;
    Ok(rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openssl_3_output() {
        let out = "Doing 2048 bits private rsa's for 3s: 4862 2048 bits private RSA's in 3.00s\n\
                   version: 3.0.19\n\
                                      sign    verify    sign/s verify/s\n\
                   rsa 2048 bits 0.000617s 0.000018s   1620.7  55026.4\n";
        assert_eq!(parse_openssl_speed(out, "rsa2048"), Some(1620.7));
        assert_eq!(parse_openssl_speed(out, "ed25519"), None);
        let ed = " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  26277.8   9000.1\n";
        assert_eq!(parse_openssl_speed(ed, "ed25519"), Some(26277.8));
    }

    #[test]
    fn fsync_rate_is_positive() {
        let dir = tempfile::tempdir().unwrap();
        assert!(fsync_rate(dir.path(), Duration::from_millis(20)).unwrap() > 0.0);
    }

    #[test]
    fn library_rates_are_positive() {
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            assert!(library_sign_rate(alg, Duration::from_millis(20)).unwrap() > 0.0);
        }
    }
}
