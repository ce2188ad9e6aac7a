//! What an `/analyze` pass produces and what a request wants of one: the types shared by the
//! pass ([`super::analyze`]), the state that keeps passes single-flight, and the error answers.

use bytes::Bytes;

use crate::explorer::{self, ExplorerError, WhatIfRequest};
use crate::upstream::ResolveError;

use super::scrape::TargetFailures;

/// Why an `/analyze` pass has no report.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum AnalyzeFailure {
    /// The upstream could not be resolved (or not in time).
    #[error(transparent)]
    Resolve(ResolveError),
    /// Every target failed.
    #[error("upstream {upstream}: {failures}")]
    AllTargets {
        /// The upstream as configured.
        upstream: String,
        /// Each target and why it failed.
        failures: TargetFailures,
    },
}

/// What a request needs from a pass, and what a pass was started to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Want {
    /// The text report only.
    Text,
    /// The text report and the explorer's profile (the page, or its JSON, without a what-if).
    Profile,
    /// Both, and this what-if.
    WhatIf(WhatIfRequest),
}

impl Want {
    /// Whether a pass started for `pass` has what this request needs.
    pub(crate) fn answered_by(&self, pass: &Want) -> bool {
        match (self, pass) {
            (Want::Text, _) => true,
            (Want::Profile, Want::Profile | Want::WhatIf(_)) => true,
            (Want::WhatIf(mine), Want::WhatIf(its)) => mine == its,
            _ => false,
        }
    }
}

/// What one `/analyze` pass produced, shared by every request that waited for it.
#[derive(Debug)]
pub(crate) struct Analysis {
    /// What the pass was started for.
    pub want: Want,
    /// The reports, or why there are none.
    pub result: Result<Reports, AnalyzeFailure>,
}

/// The reports of a pass over at least one target that answered in full.
#[derive(Debug)]
pub(crate) struct Reports {
    /// The text report, with a comment line per failed target (the format `curl` gets).
    pub text: Bytes,
    /// The explorer's profile and what-if; `None` for a [`Want::Text`] pass.
    pub explorer: Option<Result<explorer::Report, ExplorerError>>,
    /// Remarks for the page: the targets that failed.
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_pass_answers_which_request() {
        let path = Want::WhatIf(WhatIfRequest::drop(["path"]));
        let method = Want::WhatIf(WhatIfRequest::drop(["method"]));
        for pass in [&Want::Text, &Want::Profile, &path] {
            assert!(Want::Text.answered_by(pass), "{pass:?}");
        }
        assert!(!Want::Profile.answered_by(&Want::Text));
        assert!(Want::Profile.answered_by(&Want::Profile));
        assert!(Want::Profile.answered_by(&path));
        assert!(path.answered_by(&path));
        assert!(!path.answered_by(&method));
        assert!(!path.answered_by(&Want::Profile));
    }
}
