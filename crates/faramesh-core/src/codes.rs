//! The kinds of problems a policy, profile or cases file can have. Each has a stable
//! kebab-case name, shown by `policy validate` and in the JSON report, and listed with its
//! meaning in docs/policies.md.

macro_rules! codes {
    ($( $variant:ident = $name:literal: $meaning:literal, )*) => {
        /// The kind of a problem.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( #[doc = $meaning] $variant, )*
        }

        impl Code {
            /// Every kind, in the order of the documentation.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable name (`unknown-key`, `bad-regex`, ...).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }

            /// What a problem of this kind means.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning,)*
                }
            }
        }
    };
}

codes! {
    YamlSyntax = "yaml-syntax": "The file is not valid YAML, or a mapping gives a key twice.",
    NotAMapping = "not-a-mapping": "The policy file is not a mapping with a `rules:` list.",
    MissingRules = "missing-rules": "The policy has no `rules:` list.",
    RulesNotList = "rules-not-list": "`rules` is not a list.",
    RuleNotMapping = "rule-not-mapping": "A rule (of a policy or a profile) is not a mapping.",
    MissingMatch = "missing-match": "A rule has no `match:`.",
    BadMatch = "bad-match": "`match:` (or a risk rule's `when:`) is not a mapping of conditions.",
    EmptyMatch = "empty-match": "`match:` names no condition, so it would match every action; write `tool: \"*\"` to mean that.",
    MissingEffect = "missing-effect": "A rule has none of `allow`, `deny` or `require_approval`.",
    SeveralEffects = "several-effects": "A rule has more than one of `allow`, `deny` and `require_approval`.",
    EffectNotBoolean = "effect-not-boolean": "An effect key is not `true` or `false`.",
    UnknownKey = "unknown-key": "A key the policy language does not have (a misspelling gets a suggestion).",
    UnreachableRule = "unreachable-rule": "Warning: an earlier rule decides every action this rule covers, so it never matches.",
    RiskNotMapping = "risk-not-mapping": "`risk` is not a mapping with a `rules:` list.",
    MissingRiskRules = "missing-risk-rules": "`risk` has no `rules:` list.",
    RiskRulesNotList = "risk-rules-not-list": "`risk.rules` is not a list.",
    MissingKey = "missing-key": "A required key is missing (a risk rule's `name`, `when` or `risk_level`; a profile's `id`, `version` or `allowed_tools`).",
    BadRisk = "bad-risk": "A risk level is not `low`, `medium` or `high`.",
    NotText = "not-text": "A value that must be text is something else.",
    BadValue = "bad-value": "A value cannot be used where it stands (a condition value of the wrong kind, a profile value with no JSON form).",
    AmountNotNumber = "amount-not-number": "`amount_gt`, `amount_gte`, `amount_lt` or `amount_lte` is not a number.",
    DuplicateOp = "duplicate-op": "Two spellings of one condition are given in the same match (`op` and `operation`).",
    BadRegex = "bad-regex": "A `pattern` (or profile regex) does not compile, or is over the size limit.",
    BadExpression = "bad-expression": "A `when` expression is not valid CEL, uses a name or function the language does not have, takes a `matches` pattern that is not a literal, is over the size limits, or stands in an execution profile.",
    BadHost = "bad-host": "A `url_host` entry is not a host name or address.",
    BadScheme = "bad-scheme": "A `url_scheme` entry is not a URL scheme.",
    BadPort = "bad-port": "A `url_port` entry is not a port number from 0 to 65535.",
    EmptyList = "empty-list": "A condition lists nothing, so it could never hold.",
    FieldWithoutValue = "field-without-value": "`field` is given without `value`.",
    ValueWithoutField = "value-without-field": "`value` is given without `field`.",
    BadFields = "bad-fields": "`fields` is not a mapping from field paths to tests.",
    EmptyFields = "empty-fields": "`fields` names no field.",
    BadFieldPath = "bad-field-path": "A `fields` key is not a `params.`/`context.` path.",
    BadFieldTests = "bad-field-tests": "The tests of a field are not a mapping of operators.",
    EmptyFieldTests = "empty-field-tests": "A field has no tests.",
    UnknownOperator = "unknown-operator": "A field test names an operator the language does not have.",
    NotList = "not-list": "A field test that takes a list (`in`, `not_in`) is given something else.",
    NotNumber = "not-number": "A numeric field test (`gt`, `lt`, ...) is not given a number.",
    NotBoolean = "not-boolean": "A setting that takes `true` or `false` (`exists`, a profile rule's `approval_token`) is given something else.",
    NullValue = "null-value": "A field test compares with null, which never matches: a null field counts as absent.",
    ContradictoryTests = "contradictory-tests": "`exists: false` is given with other tests, which an absent field never passes.",
    NoTools = "no-tools": "Warning: the profile's `allowed_tools` is empty, so every action is halted.",
    NotAList = "not-a-list": "A profile's `allowed_tools` or `rules` is not a list.",
    WildcardTool = "wildcard-tool": "Warning: `*` in `allowed_tools` is a tool name, not a wildcard.",
    BadOutcome = "bad-outcome": "A profile rule's `outcome` is not HALT, ABSTAIN or EXECUTE.",
    BadApproval = "bad-approval": "The mapping form of `require_approval` holds a value it cannot use: `approvers` not 1 to 100, a role that cannot approve, a timeout that is not a duration, `on_timeout` not deny or escalate (or escalate without a timeout), a route name that is not text.",
    BadLimit = "bad-limit": "A limit under `limits:` is missing `name`, `match` or `window`, counts neither calls nor a sum (or both), has a `per`, `sum`, `max` or `on_exceed` it cannot use, or repeats another limit's name.",
    MissingCases = "missing-cases": "A cases file is not a mapping with a `cases:` list.",
    BadCase = "bad-case": "A test case is not a mapping with the action's fields.",
    BadExpect = "bad-expect": "A test case's expectation is not an outcome, a decision or a risk level.",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A code compares equal to its name, so a test can say `assert_eq!(d.code, "bad-regex")`.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn every_code_is_documented_with_its_meaning() {
        let docs = include_str!("../../../docs/policies.md");
        for code in Code::ALL {
            let row = format!("| `{}` | {} |", code.as_str(), code.meaning());
            assert!(docs.contains(&row), "docs/policies.md lacks the row {row}");
        }
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Code::ALL.len());
    }
}
