//! Certificates made by the tests with the `openssl` command (`.ci/run`
//! installs it; a missing one fails the test): a CA, and certificates it
//! issues for a server or a client, valid, expired, or for another host.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// A certificate and its key, PEM files.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (`127.0.0.1` and `localhost`, or the names given).
    Server,
    /// A TLS client.
    Client,
}

/// A certificate authority in a directory of its own.
#[derive(Debug)]
pub struct Ca {
    dir: PathBuf,
    /// The CA's own certificate and key.
    pub pair: Pair,
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (.ci/run installs it)");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl Ca {
    /// A new CA named `name` under `dir` (made if missing).
    pub fn new(dir: &Path, name: &str) -> Self {
        let dir = dir.join(name);
        fs::create_dir_all(&dir).expect("the CA's directory");
        let pair = Pair { cert: dir.join("ca.pem"), key: dir.join("ca.key") };
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
            &dir,
        );
        fs::write(dir.join("index.txt"), b"").expect("the CA's index");
        fs::write(dir.join("serial"), b"1000\n").expect("the CA's serial");
        fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
             default_md = sha256\npolicy = p\ncopy_extensions = copy\nunique_subject = no\n\
             [p]\ncommonName = supplied\n",
        )
        .expect("the CA's configuration");
        Self { dir, pair }
    }

    /// A certificate named `name` for `usage`, valid now (`expired`: valid
    /// in 2020 only), for `hosts` (a server's DNS names and IP addresses).
    pub fn issue(&self, name: &str, usage: Usage, hosts: &[&str], expired: bool) -> Pair {
        let pair = Pair { cert: self.dir.join(format!("{name}.pem")), key: self.dir.join(format!("{name}.key")) };
        let csr = format!("{name}.csr");
        let key = format!("{name}.key");
        let subject = format!("/CN={name}");
        openssl(
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                &subject,
                "-keyout",
                &key,
                "-out",
                &csr,
            ],
            &self.dir,
        );
        let extensions = match usage {
            Usage::Server => {
                let names: Vec<String> = hosts
                    .iter()
                    .map(|h| if h.parse::<std::net::IpAddr>().is_ok() { format!("IP:{h}") } else { format!("DNS:{h}") })
                    .collect();
                format!("subjectAltName={}\nextendedKeyUsage=serverAuth\n", names.join(","))
            }
            Usage::Client => "extendedKeyUsage=clientAuth\n".to_owned(),
        };
        let ext = format!("{name}.ext");
        fs::write(self.dir.join(&ext), format!("basicConstraints=CA:FALSE\n{extensions}")).expect("extensions");
        let out = format!("{name}.pem");
        let (start, end) = if expired { ("20200101000000Z", "20200102000000Z") } else { ("", "") };
        let mut args = vec![
            "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key", "-in", &csr, "-out", &out,
            "-notext", "-extfile", &ext,
        ];
        if expired {
            args.extend(["-startdate", start, "-enddate", end]);
        } else {
            args.extend(["-days", "2"]);
        }
        openssl(&args, &self.dir);
        pair
    }
}
