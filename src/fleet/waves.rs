//! The phases a fleet's targets run in: the canaries first (a count of the targets with
//! pending migrations, or a list of ids), then one wave per label in `waves`, then the
//! targets that match no wave. A target in two waves runs in the first.

use std::collections::BTreeMap;

use super::schedule::Phase;

/// One target to order: its id and labels.
pub struct Item<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
}

/// The phases of `items` (indexes into it): canaries (`canary_ids` when given, else the first
/// `canary`), the waves in order, and a last phase for the targets in no wave. Empty phases
/// are left out.
#[must_use]
pub fn phases(
    items: &[Item<'_>],
    canary: usize,
    canary_ids: Option<&[String]>,
    waves: &[(String, String)],
) -> Vec<Phase> {
    let mut left: Vec<usize> = (0..items.len()).collect();
    let mut out = Vec::new();
    let canaries: Vec<usize> = match canary_ids {
        Some(ids) => ids
            .iter()
            .filter_map(|id| items.iter().position(|t| t.id == id))
            .collect(),
        None => left.iter().copied().take(canary).collect(),
    };
    left.retain(|i| !canaries.contains(i));
    out.push(Phase {
        items: canaries,
        canary: true,
    });
    for (k, v) in waves {
        let (wave, rest): (Vec<usize>, Vec<usize>) = left
            .iter()
            .partition(|&&i| items[i].labels.get(k) == Some(v));
        left = rest;
        out.push(Phase {
            items: wave,
            canary: false,
        });
    }
    out.push(Phase {
        items: left,
        canary: false,
    });
    out.retain(|p| !p.items.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_then_waves_then_the_rest() {
        let label = |tier: &str| BTreeMap::from([("tier".to_owned(), tier.to_owned())]);
        let (free, big, none) = (label("free"), label("enterprise"), BTreeMap::new());
        let items = [
            Item {
                id: "a",
                labels: &big,
            },
            Item {
                id: "b",
                labels: &free,
            },
            Item {
                id: "c",
                labels: &none,
            },
            Item {
                id: "d",
                labels: &free,
            },
            Item {
                id: "e",
                labels: &big,
            },
        ];
        let waves = [
            ("tier".to_owned(), "free".to_owned()),
            ("tier".to_owned(), "enterprise".to_owned()),
        ];
        let p = phases(&items, 0, Some(&["e".to_owned()]), &waves);
        let got: Vec<(Vec<usize>, bool)> = p.into_iter().map(|p| (p.items, p.canary)).collect();
        assert_eq!(
            got,
            vec![
                (vec![4], true),
                (vec![1, 3], false),
                (vec![0], false),
                (vec![2], false)
            ]
        );
        let p = phases(&items, 2, None, &[]);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].items, vec![0, 1]);
        assert_eq!(p[1].items, vec![2, 3, 4]);
        // A canary that is not among the items (up to date) is simply not run.
        let p = phases(&items[..2], 0, Some(&["x".to_owned()]), &[]);
        assert_eq!(p.len(), 1);
        assert!(!p[0].canary);
    }
}
