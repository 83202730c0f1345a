//! The architecture guards of `cargo xtask test`: the crate graph and the modules that allow
//! `unsafe`, each checked against what `docs/ARCHITECTURE.md` writes down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::util::{cargo, output, project_root};

/// Crates nothing may depend on, in any way.
const TOP: &[&str] = &["xtask", "mm-tests", "mm-benches"];
/// The one workspace crate that may be a build-dependency.
const BUILD_HELPER: &str = "mm-build";
/// Folders whose Rust files are scanned for the attributes that allow unsafe code.
const SOURCE_DIRS: &[&str] = &["crates", "xtask", "tests", "benches"];
/// The attributes that opt a module (`#!`) or an item (`#`) out of the workspace's
/// `unsafe_code = "deny"`, spelt in pieces so that this file does not match itself.
const ALLOW_UNSAFE: [&str; 2] = [
    concat!("#![allow(", "unsafe_code"),
    concat!("#[allow(", "unsafe_code"),
];

/// One workspace dependency: `(from, to, kind)` with kind `normal`, `build` or `dev`.
type Edge = (String, String, String);

pub fn check() -> Result<()> {
    let doc_path = project_root().join("docs/ARCHITECTURE.md");
    let doc = std::fs::read_to_string(&doc_path)
        .with_context(|| format!("reading {}", doc_path.display()))?;
    let allowed = allowed_edges(&doc)?;
    let edges = workspace_edges()?;
    let problems = graph_problems(&allowed, &edges);
    if !problems.is_empty() {
        bail!(
            "the crate graph differs from docs/ARCHITECTURE.md (\"Allowed dependencies\"):\n  {}",
            problems.join("\n  ")
        );
    }
    println!(
        "ok: {} workspace dependencies follow the allowed edges of docs/ARCHITECTURE.md",
        edges.len()
    );
    let listed = unsafe_modules(&doc)?;
    let found = files_allowing_unsafe(&project_root())?;
    let problems = unsafe_problems(&listed, &found);
    if !problems.is_empty() {
        bail!(
            "the modules that allow `unsafe` differ from docs/ARCHITECTURE.md:\n  {}",
            problems.join("\n  ")
        );
    }
    println!(
        "ok: the {} modules that allow `unsafe` are those docs/ARCHITECTURE.md lists",
        found.len()
    );
    Ok(())
}

/// The lines of the section that starts with the heading `## {title}`, up to the next `## `.
fn section<'a>(doc: &'a str, title: &str) -> Result<Vec<&'a str>> {
    let heading = format!("## {title}");
    let mut lines = doc.lines().skip_while(|l| l.trim() != heading);
    if lines.next().is_none() {
        bail!("docs/ARCHITECTURE.md has no `{heading}` section");
    }
    Ok(lines.take_while(|l| !l.starts_with("## ")).collect())
}

/// The names between backticks in `text`.
fn ticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The "Allowed dependencies" table: each crate and the workspace crates it may depend on.
fn allowed_edges(doc: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut rows = BTreeMap::new();
    for line in section(doc, "Allowed dependencies")? {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        if cells.len() != 2 || !cells[0].contains('`') {
            continue;
        }
        let krate = ticked(cells[0]);
        let [krate] = krate.as_slice() else {
            bail!("an allowed-dependencies row must name one crate: {line}");
        };
        rows.insert(krate.clone(), ticked(cells[1]).into_iter().collect());
    }
    if rows.is_empty() {
        bail!("the `## Allowed dependencies` table of docs/ARCHITECTURE.md has no rows");
    }
    Ok(rows)
}

/// The files of the "Modules that allow `unsafe`" list (`- `path`: why`).
fn unsafe_modules(doc: &str) -> Result<BTreeSet<PathBuf>> {
    Ok(section(doc, "Modules that allow `unsafe`")?
        .into_iter()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(PathBuf::from)
        .collect())
}

/// Every dependency between workspace crates, from `cargo metadata`.
fn workspace_edges() -> Result<Vec<Edge>> {
    let o = output(cargo().args(["metadata", "--no-deps", "--format-version", "1", "--locked"]))?;
    if !o.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&o.stdout).context("parsing cargo metadata")?;
    edges_of(&meta)
}

fn edges_of(meta: &serde_json::Value) -> Result<Vec<Edge>> {
    let packages = meta["packages"]
        .as_array()
        .context("cargo metadata without packages")?;
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut edges = Vec::new();
    for p in packages {
        let from = p["name"].as_str().context("a package without a name")?;
        edges.push((from.to_owned(), String::new(), "package".to_owned()));
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let Some(to) = d["name"].as_str().filter(|n| names.contains(n)) else {
                continue;
            };
            let kind = d["kind"].as_str().unwrap_or("normal");
            edges.push((from.to_owned(), to.to_owned(), kind.to_owned()));
        }
    }
    Ok(edges)
}

/// What breaks the documented graph; `edges` holds a `("crate", "", "package")` row per crate.
fn graph_problems(allowed: &BTreeMap<String, BTreeSet<String>>, edges: &[Edge]) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, to, kind) in edges {
        if kind == "package" {
            if !allowed.contains_key(from) {
                problems.push(format!(
                    "crate {from} has no row: add one with its allowed deps"
                ));
            }
            continue;
        }
        if TOP.contains(&to.as_str()) {
            problems.push(format!("{from} depends on {to} ({kind}): nothing may"));
        } else if kind == "build" && to != BUILD_HELPER {
            problems.push(format!("{from} has {to} as a build-dependency"));
        } else if kind == "normal" && !allowed.get(from).is_some_and(|a| a.contains(to)) {
            problems.push(format!(
                "{from} depends on {to}, which its row does not allow"
            ));
        }
    }
    for krate in allowed.keys() {
        if !edges.iter().any(|(f, _, k)| f == krate && k == "package") {
            problems.push(format!(
                "the table names {krate}, which is not a workspace crate"
            ));
        }
    }
    problems
}

/// The Rust files under [`SOURCE_DIRS`] that hold one of [`ALLOW_UNSAFE`], relative to `root`.
fn files_allowing_unsafe(root: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut found = BTreeSet::new();
    let mut stack: Vec<PathBuf> = SOURCE_DIRS.iter().map(|d| root.join(d)).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                if ALLOW_UNSAFE.iter().any(|a| text.contains(a)) {
                    found.insert(path.strip_prefix(root).unwrap_or(&path).to_owned());
                }
            }
        }
    }
    Ok(found)
}

fn unsafe_problems(listed: &BTreeSet<PathBuf>, found: &BTreeSet<PathBuf>) -> Vec<String> {
    let mut problems: Vec<String> = found
        .difference(listed)
        .map(|p| format!("{} allows unsafe_code but is not listed", p.display()))
        .collect();
    problems.extend(
        listed
            .difference(found)
            .map(|p| format!("{} is listed but does not allow unsafe_code", p.display())),
    );
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Architecture\n\n## Allowed dependencies\n\ntext\n\n\
        | crate | may depend on |\n|---|---|\n| `a` | |\n| `b` | `a` |\n| `mm-build` | |\n\
        | `xtask` | |\n\n## Modules that allow `unsafe`\n\n- `crates/a/src/x.rs`: why\n\
        - `crates/b/src/y.rs`: why\n\n## Next\n- `crates/c/src/z.rs`: not this list\n";

    fn edge(from: &str, to: &str, kind: &str) -> Edge {
        (from.into(), to.into(), kind.into())
    }

    fn packages(names: &[&str]) -> Vec<Edge> {
        names.iter().map(|n| edge(n, "", "package")).collect()
    }

    #[test]
    fn the_documented_graph_is_read_and_enforced() {
        let allowed = allowed_edges(DOC).unwrap();
        assert_eq!(allowed["b"], BTreeSet::from(["a".to_owned()]));
        assert!(allowed["a"].is_empty());
        let mut edges = packages(&["a", "b", "mm-build", "xtask"]);
        edges.extend([
            edge("b", "a", "normal"),
            edge("a", "mm-build", "build"),
            edge("a", "b", "dev"),
        ]);
        assert!(graph_problems(&allowed, &edges).is_empty());
        // an edge the table does not allow, a build-dependency other than mm-build, a
        // dependency on xtask, a crate without a row, a row without a crate
        let mut bad = packages(&["a", "b", "c", "xtask"]);
        bad.extend([
            edge("a", "b", "normal"),
            edge("b", "a", "build"),
            edge("b", "xtask", "dev"),
        ]);
        let p = graph_problems(&allowed, &bad).join("\n");
        for needle in [
            "a depends on b, which its row does not allow",
            "b has a as a build-dependency",
            "b depends on xtask (dev): nothing may",
            "crate c has no row",
            "names mm-build, which is not a workspace crate",
        ] {
            assert!(p.contains(needle), "{needle}: {p}");
        }
    }

    #[test]
    fn the_unsafe_list_must_match_the_files() {
        let listed = unsafe_modules(DOC).unwrap();
        assert_eq!(listed.len(), 2);
        let found: BTreeSet<PathBuf> = ["crates/a/src/x.rs", "crates/d/src/w.rs"]
            .map(PathBuf::from)
            .into();
        let p = unsafe_problems(&listed, &found).join("\n");
        assert!(
            p.contains("crates/d/src/w.rs allows unsafe_code but is not listed"),
            "{p}"
        );
        assert!(
            p.contains("crates/b/src/y.rs is listed but does not allow"),
            "{p}"
        );
        // the repository as it is agrees with its own ARCHITECTURE.md
        let doc = std::fs::read_to_string(project_root().join("docs/ARCHITECTURE.md")).unwrap();
        let found = files_allowing_unsafe(&project_root()).unwrap();
        assert!(found.len() >= 4, "{found:?}");
        assert!(unsafe_problems(&unsafe_modules(&doc).unwrap(), &found).is_empty());
    }

    #[test]
    fn a_missing_section_is_an_error() {
        let e = allowed_edges("# nothing here\n").unwrap_err().to_string();
        assert!(e.contains("## Allowed dependencies"), "{e}");
    }

    #[test]
    fn cargo_metadata_edges_keep_kinds_and_skip_outside_crates() {
        let meta = serde_json::json!({"packages": [
            {"name": "a", "dependencies": [
                {"name": "serde", "kind": null},
                {"name": "b", "kind": null},
                {"name": "b", "kind": "dev"}]},
            {"name": "b", "dependencies": [{"name": "mm-build", "kind": "build"}]},
        ]});
        let e = edges_of(&meta).unwrap();
        assert_eq!(
            e,
            [
                edge("a", "", "package"),
                edge("a", "b", "normal"),
                edge("a", "b", "dev"),
                edge("b", "", "package"),
            ]
        );
    }
}
