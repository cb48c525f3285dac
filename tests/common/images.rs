//! OCI image layouts built by the tests themselves (random layers, real tar+gzip), and skopeo
//! to push them to the registry under test and to read back what the registry holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use rand::RngCore;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";
pub const CREATED: &str = "2026-01-02T03:04:05Z";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Clone, Debug)]
pub struct Desc {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

impl Desc {
    fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An OCI image layout directory.
pub struct Layout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    b
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = Layout {
            dir: dir.to_path_buf(),
            refs: Vec::new(),
        };
        l.write_index();
        l
    }

    fn blob(&self, media_type: &str, bytes: &[u8]) -> Desc {
        let digest = sha256(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        std::fs::write(path, bytes).unwrap();
        Desc {
            media_type: media_type.into(),
            digest,
            size: bytes.len() as u64,
        }
    }

    /// A layer: a tar holding one file of random bytes, gzipped. Returns it and its diff_id.
    fn layer(&self, size: usize) -> (Desc, String) {
        let mut tar = tar::Builder::new(Vec::new());
        let data = random_bytes(size);
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "data.bin", data.as_slice())
            .unwrap();
        let tar = tar.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        (
            self.blob("application/vnd.oci.image.layer.v1.tar+gzip", &gz),
            diff_id,
        )
    }

    /// A single-platform image with `layers` random layers.
    pub fn image(&self, arch: &str, variant: Option<&str>, layers: usize) -> Desc {
        let built: Vec<(Desc, String)> = (0..layers).map(|i| self.layer(200 + 100 * i)).collect();
        let mut config = json!({
            "created": CREATED,
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["NONCE=".to_string() + &hex::encode(random_bytes(8))]},
            "rootfs": {"type": "layers", "diff_ids": built.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>()},
        });
        if let Some(v) = variant {
            config["variant"] = json!(v);
        }
        let config = self.blob(
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).unwrap(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.json(),
            "layers": built.iter().map(|(d, _)| d.json()).collect::<Vec<_>>(),
        });
        self.blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
    }

    /// An OCI index of `children`, each with (architecture, variant).
    pub fn index(&self, children: &[(Desc, &str, Option<&str>)]) -> Desc {
        let manifests: Vec<Value> = children
            .iter()
            .map(|(d, arch, variant)| {
                let mut v = d.json();
                v["platform"] = json!({"os": "linux", "architecture": arch});
                if let Some(var) = variant {
                    v["platform"]["variant"] = json!(var);
                }
                v
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.blob(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
    }

    /// Names `desc` as `tag` in the layout's index.json.
    pub fn tag(&mut self, tag: &str, desc: &Desc) {
        let mut v = desc.json();
        v["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(v);
        self.write_index();
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "manifests": self.refs});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
    }

    /// `skopeo copy` of layout tag `from` to `registry/name:tag`; `docker` converts to the Docker
    /// media types (schema2 / manifest list).
    pub fn push(
        &self,
        registry: &str,
        creds: &str,
        from: &str,
        name: &str,
        tag: &str,
        docker: bool,
    ) {
        let mut cmd = Command::new("skopeo");
        cmd.args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--dest-tls-verify=false",
        ])
        .args(["--dest-creds", creds]);
        if docker {
            cmd.args(["--format", "v2s2"]);
        }
        let out = cmd
            .arg(format!("oci:{}:{from}", self.dir.display()))
            .arg(format!("docker://{registry}/{name}:{tag}"))
            .output()
            .expect("skopeo must be installed (the test command installs it)");
        assert!(
            out.status.success(),
            "skopeo copy {from} -> {name}:{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `skopeo inspect --raw`: the manifest bytes exactly as the registry stores them.
pub fn raw_manifest(registry: &str, creds: &str, reference: &str) -> Option<Vec<u8>> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            creds,
        ])
        .arg(format!("docker://{registry}/{reference}"))
        .output()
        .expect("skopeo");
    out.status.success().then_some(out.stdout)
}

/// `skopeo copy --all` from the registry into a fresh layout: fails when any child or blob of
/// the image is missing.
pub fn pull_all(registry: &str, creds: &str, reference: &str, into: &Path) -> Result<(), String> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            "--src-tls-verify=false",
            "--src-creds",
            creds,
        ])
        .arg(format!("docker://{registry}/{reference}"))
        .arg(format!("oci:{}:pulled", into.display()))
        .output()
        .expect("skopeo");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A layout holding one single-platform amd64 image tagged `img`; keep the directory alive.
pub fn one_image(layers: usize) -> (tempfile::TempDir, Layout, Desc) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut layout = Layout::new(dir.path());
    let img = layout.image("amd64", None, layers);
    layout.tag("img", &img);
    (dir, layout, img)
}

/// Stores the OCI manifest `raw`, whose blobs are in repository `from`, as `name:tag` with the
/// registry's own API: a cross-repository mount per blob and one manifest PUT. Much faster than
/// skopeo for making many repositories.
pub fn copy_by_mount(
    registry_url: &str,
    password: &str,
    from: &str,
    raw: &[u8],
    name: &str,
    tag: &str,
) {
    let manifest: Value = serde_json::from_slice(raw).expect("manifest JSON");
    let blobs = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().expect("layers"))
        .map(|d| d["digest"].as_str().expect("digest").to_string());
    let c = super::client();
    for b in blobs {
        let r = c
            .post(format!(
                "{registry_url}/v2/{name}/blobs/uploads/?mount={b}&from={from}"
            ))
            .basic_auth("admin", Some(password))
            .send()
            .expect("mount");
        assert_eq!(r.status(), 201, "mount {b} into {name}");
    }
    let r = c
        .put(format!("{registry_url}/v2/{name}/manifests/{tag}"))
        .basic_auth("admin", Some(password))
        .header("content-type", OCI_MANIFEST)
        .body(raw.to_vec())
        .send()
        .expect("manifest PUT");
    assert_eq!(r.status(), 201, "PUT {name}:{tag}");
}
