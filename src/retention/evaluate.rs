//! Which tags of one repository a set of policies keeps, and why. Pure: the repository's tags
//! and digests, the push/pull facts and the time come in, a decision per tag goes out, so the
//! plan and the live re-check before each delete are the same computation.
//!
//! Order of reasons, first match wins:
//! 1. a `protect` expression of any matching policy — always kept;
//! 2. a tag whose push time is unknown — kept (never drop what we cannot date);
//! 3. a rule keeping it (rules are ORed; a rule's criteria are ANDed);
//! 4. signature tags (`sha256-<hex>.sig|.att|.sbom`) and tags of an index's children follow
//!    their subject: kept when the subject digest is kept;
//! 5. otherwise it is a candidate — unless it is the repository's last tag, which stays.
//!
//! Evaluated per digest, deleted per tag: a digest is kept while any of its tags is kept, and
//! then every tag pointing to it stays too. Deleting such a tag would free nothing and could
//! only surprise (a build promoted as `prod` must not lose its `build-41` name by a rule about
//! build tags); only the tags of digests that nothing keeps are candidates.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::facts::{Millis, RepoFacts};
use super::policy::{CompiledPolicy, CompiledRule};

/// One tag of a repository as the registry has it now.
#[derive(Debug, Clone, PartialEq)]
pub struct TagState {
    pub tag: String,
    pub digest: String,
}

/// A repository's tags, and the children of each index among their digests.
#[derive(Debug, Clone, Default)]
pub struct RepoState {
    pub tags: Vec<TagState>,
    /// index digest → its children's digests.
    pub children: HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Item {
    pub tag: String,
    pub digest: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub keep: Vec<Item>,
    pub delete: Vec<Item>,
}

/// The subject digest a cosign-style tag (`sha256-<hex>.sig`, `.att`, `.sbom`) refers to.
pub fn signature_subject(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("sha256-")?;
    let (hex, kind) = rest.split_once('.')?;
    if !matches!(kind, "sig" | "att" | "sbom")
        || hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    Some(format!("sha256:{hex}"))
}

fn describe(rule: &CompiledRule) -> String {
    let mut parts = Vec::new();
    if let Some(i) = &rule.include {
        parts.push(format!("include {}", i.text));
    }
    if let Some(e) = &rule.exclude {
        parts.push(format!("exclude {}", e.text));
    }
    if let Some(n) = rule.newest_pushed {
        parts.push(format!("newest_pushed {n}"));
    }
    if let Some(m) = rule.pushed_within_minutes {
        parts.push(format!("pushed_within {m}m"));
    }
    if let Some(n) = rule.newest_pulled {
        parts.push(format!("newest_pulled {n}"));
    }
    if let Some(m) = rule.pulled_within_minutes {
        parts.push(format!("pulled_within {m}m"));
    }
    if parts.is_empty() {
        rule.label.clone()
    } else {
        format!("{} ({})", rule.label, parts.join(", "))
    }
}

/// The tags among `selected` that are the `n` newest by `time` (unknown times count as newest
/// for pushes — such tags are kept anyway — and as never for pulls).
fn newest<'a>(
    selected: &[&'a TagState],
    n: usize,
    time: impl Fn(&TagState) -> Option<Millis>,
    unknown_is_newest: bool,
) -> HashSet<&'a str> {
    let mut ranked: Vec<(Millis, &str)> = selected
        .iter()
        .filter_map(|t| match time(t) {
            Some(ms) => Some((ms, t.tag.as_str())),
            None if unknown_is_newest => Some((Millis::MAX, t.tag.as_str())),
            None => None,
        })
        .collect();
    // Newest first; ties broken by name so the answer does not depend on listing order.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    ranked.into_iter().take(n).map(|(_, t)| t).collect()
}

/// What `rule` keeps among `tags`, given each tag's push and pull time.
fn kept_by_rule<'a>(
    rule: &CompiledRule,
    tags: &[&'a TagState],
    facts: &RepoFacts,
    now: Millis,
) -> HashSet<&'a str> {
    let pushed = |t: &TagState| facts.pushed.get(&t.tag).copied();
    let pulled = |t: &TagState| facts.pulled.get(&t.digest).copied();
    let selected: Vec<&TagState> = tags
        .iter()
        .copied()
        .filter(|t| rule.selects(&t.tag))
        .collect();
    let newest_pushed = rule
        .newest_pushed
        .map(|n| newest(&selected, n, pushed, true));
    // With pulls left out of the index, "never pulled" is not known: unknown counts as recent.
    let unknown_pull_is_recent = facts.pulls_incomplete;
    let newest_pulled = rule
        .newest_pulled
        .map(|n| newest(&selected, n, pulled, unknown_pull_is_recent));
    let within = |time: Option<Millis>, minutes: u64| {
        time.is_some_and(|t| t >= now.saturating_sub(minutes as i64 * 60_000))
    };
    selected
        .into_iter()
        .filter(|t| {
            newest_pushed
                .as_ref()
                .is_none_or(|s| s.contains(t.tag.as_str()))
                && newest_pulled
                    .as_ref()
                    .is_none_or(|s| s.contains(t.tag.as_str()))
                && rule
                    .pushed_within_minutes
                    .is_none_or(|m| within(pushed(t), m))
                && rule.pulled_within_minutes.is_none_or(|m| {
                    within(pulled(t), m) || (unknown_pull_is_recent && pulled(t).is_none())
                })
        })
        .map(|t| t.tag.as_str())
        .collect()
}

fn when(ms: Option<&Millis>) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(*ms))
        .map(crate::audit::entry::format_time)
        .unwrap_or_else(|| "never".into())
}

/// The decision for one repository under `policies` (those matching it; none → `None`, the
/// repository is left alone).
pub fn evaluate(
    policies: &[&CompiledPolicy],
    repo: &RepoState,
    facts: &RepoFacts,
    now: Millis,
) -> Option<Decision> {
    if policies.is_empty() {
        return None;
    }
    let tagged_digests: HashSet<&str> = repo.tags.iter().map(|t| t.digest.as_str()).collect();
    let child_digests: HashSet<&str> = repo
        .children
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    // Signature tags whose subject is in this repository follow it; others are ordinary tags.
    let follows = |t: &TagState| {
        signature_subject(&t.tag)
            .filter(|s| tagged_digests.contains(s.as_str()) || child_digests.contains(s.as_str()))
    };
    let ordinary: Vec<&TagState> = repo.tags.iter().filter(|t| follows(t).is_none()).collect();

    let mut kept: BTreeMap<&str, String> = BTreeMap::new();
    for t in &ordinary {
        let protect = policies
            .iter()
            .flat_map(|p| p.protect.iter().map(move |r| (p, r)))
            .find(|(_, r)| r.matches(&t.tag));
        if let Some((p, r)) = protect {
            kept.insert(
                &t.tag,
                format!("protected by {:?} (policy for {})", r.text, p.pattern),
            );
        } else if !facts.pushed.contains_key(&t.tag) {
            kept.insert(&t.tag, "push time unknown: kept".into());
        }
    }
    for p in policies {
        for rule in &p.rules {
            let by_rule = kept_by_rule(rule, &ordinary, facts, now);
            for t in &ordinary {
                if by_rule.contains(t.tag.as_str()) && !kept.contains_key(t.tag.as_str()) {
                    kept.insert(&t.tag, format!("kept by {}", describe(rule)));
                }
            }
        }
    }

    // Kept digests, and the children of kept indexes, transitively (bounded by the map).
    let mut kept_digests: HashMap<String, String> = HashMap::new();
    for t in &ordinary {
        if kept.contains_key(t.tag.as_str()) {
            kept_digests
                .entry(t.digest.clone())
                .or_insert_with(|| t.tag.clone());
        }
    }
    let mut frontier: Vec<(String, String)> = kept_digests
        .iter()
        .map(|(d, t)| (d.clone(), t.clone()))
        .collect();
    while let Some((digest, by)) = frontier.pop() {
        for child in repo.children.get(&digest).into_iter().flatten() {
            if !kept_digests.contains_key(child) {
                kept_digests.insert(child.clone(), by.clone());
                frontier.push((child.clone(), by.clone()));
            }
        }
    }

    let mut decision = Decision::default();
    for t in &repo.tags {
        let item = |reason: String| Item {
            tag: t.tag.clone(),
            digest: t.digest.clone(),
            reason,
        };
        if let Some(reason) = kept.get(t.tag.as_str()) {
            decision.keep.push(item(reason.clone()));
            continue;
        }
        if let Some(subject) = follows(t) {
            match kept_digests.get(&subject) {
                Some(by) => decision
                    .keep
                    .push(item(format!("signature of {subject}, which {by} keeps"))),
                None => decision.delete.push(item(format!(
                    "signature of {subject}, which no kept tag holds"
                ))),
            }
            continue;
        }
        if let Some(by) = kept_digests.get(&t.digest) {
            let reason = if child_digests.contains(t.digest.as_str()) {
                format!("child of the index {by} keeps")
            } else {
                format!("same digest as {by}, which is kept")
            };
            decision.keep.push(item(reason));
            continue;
        }
        decision.delete.push(item(format!(
            "no rule keeps it (pushed {}, pulled {})",
            when(facts.pushed.get(&t.tag)),
            when(facts.pulled.get(&t.digest))
        )));
    }
    // Never the last tag: keep the newest-pushed candidate when nothing else stays.
    if decision.keep.is_empty() && !decision.delete.is_empty() {
        let newest = decision
            .delete
            .iter()
            .enumerate()
            .max_by(|(_, a), (_, b)| {
                let ta = facts.pushed.get(&a.tag).copied().unwrap_or(Millis::MIN);
                let tb = facts.pushed.get(&b.tag).copied().unwrap_or(Millis::MIN);
                ta.cmp(&tb).then_with(|| b.tag.cmp(&a.tag))
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        let mut last = decision.delete.remove(newest);
        last.reason = "the repository's last tag is never deleted".into();
        decision.keep.push(last);
    }
    decision.keep.sort_by(|a, b| a.tag.cmp(&b.tag));
    decision.delete.sort_by(|a, b| a.tag.cmp(&b.tag));
    Some(decision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::policy::{Policies, compile};
    use serde_json::json;

    const DAY: Millis = 24 * 3600 * 1000;
    const NOW: Millis = 1_000 * DAY;

    fn policies(v: serde_json::Value) -> crate::retention::policy::Compiled {
        compile(&serde_json::from_value::<Policies>(v).unwrap()).unwrap()
    }

    fn repo(tags: &[(&str, &str)]) -> RepoState {
        RepoState {
            tags: tags
                .iter()
                .map(|(t, d)| TagState {
                    tag: t.to_string(),
                    digest: d.to_string(),
                })
                .collect(),
            children: HashMap::new(),
        }
    }

    fn facts(pushed: &[(&str, Millis)], pulled: &[(&str, Millis)]) -> RepoFacts {
        RepoFacts {
            pushed: pushed.iter().map(|(t, m)| (t.to_string(), *m)).collect(),
            pulled: pulled.iter().map(|(d, m)| (d.to_string(), *m)).collect(),
            pulls_incomplete: false,
        }
    }

    fn deleted(d: &Decision) -> Vec<&str> {
        d.delete.iter().map(|i| i.tag.as_str()).collect()
    }

    #[test]
    fn protect_wins_and_newest_pushed_keeps_the_latest() {
        let c = policies(
            json!({"policies": [{"repositories": "**", "protect": ["v[0-9]+"],
            "rules": [{"newest_pushed": 1}]}]}),
        );
        let r = repo(&[("v1", "d1"), ("a", "d2"), ("b", "d3")]);
        let f = facts(&[("v1", 1), ("a", 2), ("b", 3)], &[]);
        let d = evaluate(&c.for_repository("app"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["a"]);
    }

    #[test]
    fn unknown_push_time_keeps_and_no_policy_means_untouched() {
        let c = policies(
            json!({"policies": [{"repositories": "team/*", "rules": [{"pushed_within": "1d"}]}]}),
        );
        let r = repo(&[("old", "d1"), ("unknown", "d2"), ("new", "d3")]);
        let f = facts(&[("old", NOW - 2 * DAY), ("new", NOW)], &[]);
        let d = evaluate(&c.for_repository("team/app"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["old"]);
        assert!(evaluate(&c.for_repository("other"), &r, &f, NOW).is_none());
    }

    #[test]
    fn a_pull_by_digest_keeps_every_tag_of_the_digest() {
        let c = policies(
            json!({"policies": [{"repositories": "**", "rules": [{"pulled_within": "7d"}]}]}),
        );
        let r = repo(&[("a", "d1"), ("b", "d1"), ("c", "d2")]);
        let f = facts(&[("a", 0), ("b", 0), ("c", 0)], &[("d1", NOW - DAY)]);
        let d = evaluate(&c.for_repository("x"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["c"]);
    }

    #[test]
    fn with_pulls_left_out_of_the_index_an_unpulled_digest_is_kept_by_pull_rules() {
        let c = policies(
            json!({"policies": [{"repositories": "**", "rules": [{"pulled_within": "7d"}]}]}),
        );
        let r = repo(&[("a", "d1"), ("b", "d2"), ("c", "d3")]);
        let mut f = facts(
            &[("a", 0), ("b", 0), ("c", 0)],
            &[("d1", NOW - DAY), ("d2", NOW - 30 * DAY)],
        );
        let d = evaluate(&c.for_repository("x"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["b", "c"]);
        f.pulls_incomplete = true;
        let d = evaluate(&c.for_repository("x"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["b"], "c may have been pulled");
    }

    #[test]
    fn signatures_and_index_children_follow_their_subject() {
        let hex_kept = "a".repeat(64);
        let hex_gone = "b".repeat(64);
        let (kept_d, gone_d) = (format!("sha256:{hex_kept}"), format!("sha256:{hex_gone}"));
        let c = policies(json!({"policies": [{"repositories": "**", "protect": ["keep"]}]}));
        let sig_kept = format!("sha256-{hex_kept}.sig");
        let sig_gone = format!("sha256-{hex_gone}.att");
        let mut r = repo(&[
            ("keep", &kept_d),
            ("gone", &gone_d),
            (&sig_kept, "s1"),
            (&sig_gone, "s2"),
            ("keep-amd64", "child"),
        ]);
        r.children.insert(kept_d.clone(), vec!["child".into()]);
        let all: Vec<(&str, Millis)> = r.tags.iter().map(|t| (t.tag.as_str(), 1)).collect();
        let f = facts(&all, &[]);
        let d = evaluate(&c.for_repository("x"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), vec!["gone", sig_gone.as_str()]);
    }

    #[test]
    fn the_last_tag_stays() {
        let c =
            policies(json!({"policies": [{"repositories": "**", "rules": [{"include": "none"}]}]}));
        let r = repo(&[("a", "d1"), ("b", "d2")]);
        let f = facts(&[("a", 1), ("b", 2)], &[]);
        let d = evaluate(&c.for_repository("x"), &r, &f, NOW).unwrap();
        assert_eq!(deleted(&d), ["a"]);
        assert_eq!(d.keep[0].tag, "b");
    }

    #[test]
    fn signature_tags_parse_strictly() {
        let hex = "0".repeat(64);
        assert!(signature_subject(&format!("sha256-{hex}.sig")).is_some());
        assert!(signature_subject(&format!("sha256-{hex}.sbom")).is_some());
        assert!(signature_subject(&format!("sha256-{hex}.txt")).is_none());
        assert!(signature_subject("sha256-abc.sig").is_none());
    }
}
