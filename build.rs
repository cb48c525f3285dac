//! Embeds the web UI: walks `ui/` and writes the asset table that src/ui/mod.rs includes, one
//! `include_bytes!` per file with its content type, so a file added under `ui/` is served
//! without a list to keep by hand. A file whose type this table does not know fails the build
//! (rather than going out as `application/octet-stream`, which `nosniff` browsers would refuse
//! to run or style). Hidden files (editor and OS leftovers such as `.DS_Store`) are not served.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

/// Content types by file extension.
const TYPES_BY_EXTENSION: &[(&str, &str)] = &[
    ("html", "text/html; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("json", "application/json"),
    ("txt", "text/plain; charset=utf-8"),
];

/// Files without an extension that may be served: the vendored Swagger UI's licence and version.
const TYPES_BY_NAME: &[(&str, &str)] = &[
    ("LICENSE", "text/plain; charset=utf-8"),
    ("VERSION", "text/plain; charset=utf-8"),
];

/// The pages src/ui/mod.rs serves by name (`/ui/` and `/docs`): a build without them is broken.
const REQUIRED: &[&str] = &["index.html", "api.html"];

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo")).join("ui");
    // A directory here makes cargo rerun this script when anything under it changes.
    println!("cargo:rerun-if-changed=ui");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    for required in REQUIRED {
        if !files.iter().any(|(path, _)| path == required) {
            fail(&format!("ui/{required} is missing"));
        }
    }

    let mut table = String::from("static ASSETS: &[Asset] = &[\n");
    for (path, file) in &files {
        let content_type = content_type(path).unwrap_or_else(|| {
            fail(&format!(
                "ui/{path}: unknown file type; add its extension and content type to build.rs, \
                 or keep the file out of ui/"
            ))
        });
        let file = file
            .to_str()
            .unwrap_or_else(|| fail(&format!("ui/{path}: path is not UTF-8")));
        writeln!(
            table,
            "    Asset {{ path: {path:?}, content_type: {content_type:?}, body: include_bytes!({file:?}) }},"
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");

    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("ui_assets.rs");
    fs::write(&out, table).unwrap_or_else(|e| fail(&format!("{}: {e}", out.display())));
}

/// Every file under `dir` as (path relative to `root` with `/` separators, absolute path).
fn walk(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| fail(&format!("{}: {e}", dir.display())));
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            fail(&format!("{}: file name is not UTF-8", path.display()))
        };
        if name.starts_with('.') {
            continue;
        }
        // Follows links, so a linked file is served as what it points at.
        let meta =
            fs::metadata(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        if meta.is_dir() {
            walk(root, &path, files);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("walked from root")
                .components()
                .map(|c| c.as_os_str().to_str().expect("checked as UTF-8 above"))
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
}

fn content_type(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, ext)) => TYPES_BY_EXTENSION
            .iter()
            .find(|(known, _)| *known == ext)
            .map(|(_, t)| *t),
        None => TYPES_BY_NAME
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, t)| *t),
    }
}

fn fail(message: &str) -> ! {
    eprintln!("build.rs: embedding the web UI: {message}");
    std::process::exit(1);
}
