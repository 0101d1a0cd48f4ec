//! Silencing findings: codes listed in `[lint] allow`, and `-- dbdeploy:allow CODE reason`
//! comments written just before a statement, inside it, or after it on its last line
//! (`/* dbdeploy:allow ... */` and MySQL's `#` work too; several codes may be joined with
//! commas). A silenced finding is kept with its reason: the approval summary shows it and the
//! log records it.

use super::finding::{AllowedBy, Finding, Silenced};

const MARK: &str = "dbdeploy:allow";

/// An allow comment: the codes it names and the reason written after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub codes: Vec<String>,
    pub reason: String,
}

/// The allow comments of a script, by statement: `spans[i]` is the byte range of statement
/// `i` in `script`. A comment belongs to the statement it is in, else to the one whose last
/// line it ends, else to the next statement.
pub(crate) fn directives(script: &str, spans: &[(usize, usize)]) -> Vec<Vec<Directive>> {
    let mut out = vec![Vec::new(); spans.len()];
    let mut line_start = 0;
    for line in script.split_inclusive('\n') {
        let found = line.find(MARK).filter(|&at| {
            let before = &line[..at];
            before.contains("--") || before.contains("/*") || before.contains('#')
        });
        if let Some(at) = found {
            let offset = line_start + at;
            let line_end = line_start + line.len();
            let owner = spans
                .iter()
                .position(|&(s, e)| offset >= s && offset < e)
                .or_else(|| {
                    spans
                        .iter()
                        .position(|&(_, e)| e <= offset && e >= line_start && e <= line_end)
                })
                .or_else(|| spans.iter().position(|&(s, _)| s > offset));
            if let Some(i) = owner {
                out[i].push(parse(&line[at + MARK.len()..]));
            }
        }
        line_start += line.len();
    }
    out
}

fn parse(rest: &str) -> Directive {
    let rest = rest.split("*/").next().unwrap_or(rest).trim();
    let (codes, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    Directive {
        codes: codes
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        reason: reason.trim().to_owned(),
    }
}

/// Splits findings into those still reported and those silenced by `allow` (codes from the
/// configuration) or by the statement's directives.
pub(crate) fn apply(
    findings: Vec<Finding>,
    allow: &[String],
    directives: &[Vec<Directive>],
) -> (Vec<Finding>, Vec<Silenced>) {
    let mut kept = Vec::new();
    let mut silenced = Vec::new();
    for finding in findings {
        let comment = directives
            .get(finding.statement.wrapping_sub(1))
            .and_then(|ds| {
                ds.iter()
                    .find(|d| d.codes.iter().any(|c| c == finding.code))
            });
        if let Some(d) = comment {
            let reason = d.reason.clone();
            silenced.push(Silenced {
                finding,
                allowed_by: AllowedBy::Comment,
                reason,
            });
        } else if allow.iter().any(|c| c == finding.code) {
            silenced.push(Silenced {
                finding,
                allowed_by: AllowedBy::Config,
                reason: "listed in [lint] allow".to_owned(),
            });
        } else {
            kept.push(finding);
        }
    }
    (kept, silenced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_belong_to_the_statement_they_precede_end_or_sit_in() {
        let script = "-- dbdeploy:allow drop-table legacy table, unused since v2\nDROP TABLE a;\nDROP TABLE b; -- dbdeploy:allow drop-table,truncate empty\n\nALTER TABLE c\n  /* dbdeploy:allow drop-column moved to d */ DROP COLUMN x;\n";
        let a = script.find("DROP TABLE a").unwrap();
        let b = script.find("DROP TABLE b").unwrap();
        let c = script.find("ALTER TABLE c").unwrap();
        let spans = [
            (a, a + 12),
            (b, b + 12),
            (c, script.find("x;").unwrap() + 1),
        ];
        let d = directives(script, &spans);
        assert_eq!(d[0][0].codes, ["drop-table"]);
        assert_eq!(d[0][0].reason, "legacy table, unused since v2");
        assert_eq!(d[1][0].codes, ["drop-table", "truncate"]);
        assert_eq!(d[1][0].reason, "empty");
        assert_eq!(d[2][0].codes, ["drop-column"]);
        assert_eq!(d[2][0].reason, "moved to d");
    }

    #[test]
    fn the_mark_in_a_string_is_not_a_comment() {
        let script = "INSERT INTO t VALUES ('dbdeploy:allow drop-table x');\nDROP TABLE t;\n";
        let spans = [(0, 51), (53, 65)];
        let d = directives(script, &spans);
        assert!(d.iter().all(Vec::is_empty), "{d:?}");
    }
}
