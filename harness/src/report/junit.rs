//! `junit.xml`: one test case per case and family, for CI systems that
//! read JUnit. A failure carries the mismatch message; failed and errored
//! cases also carry their observed exchange as `system-out`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report as Junit, TestCase, TestCaseStatus, TestSuite};

use super::schema::{CaseReport, Report, VerdictName};

fn seconds(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1e3)
}

fn status(case: &CaseReport) -> TestCaseStatus {
    let reason = case.reason.as_deref().unwrap_or_default();
    let headline = reason.lines().next().unwrap_or_default();
    let mut status = match case.verdict {
        VerdictName::Pass => return TestCaseStatus::success(),
        VerdictName::Skip => TestCaseStatus::skipped(),
        VerdictName::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("mismatch");
            s
        }
        VerdictName::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_type("error");
            s
        }
    };
    status.set_message(headline).set_description(reason);
    status
}

fn test_case(case: &CaseReport) -> TestCase {
    let mut t = TestCase::new(case.name(), status(case));
    t.set_classname(case.id.as_str()).set_time(seconds(case.duration_ms));
    if matches!(case.verdict, VerdictName::Fail | VerdictName::Error) {
        let exchange: Vec<String> = case.exchange.iter().map(ToString::to_string).collect();
        t.set_system_out(format!("exchange:\n{}\n", exchange.join("\n")));
    }
    t
}

/// The JUnit XML of `report`.
pub fn render(report: &Report) -> Result<String, quick_junit::SerializeError> {
    let mut suite = TestSuite::new(format!("tcpconform on Linux {}", report.kernel.release));
    suite
        .set_time(seconds(report.duration_ms))
        .add_property(Property::new("kernel.release", report.kernel.release.as_str()))
        .add_property(Property::new("kernel.version", report.kernel.version.as_str()))
        .add_property(Property::new("kernel.arch", report.kernel.arch.as_str()))
        .add_property(Property::new("tolerance_ms", report.tolerance_ms.to_string()))
        .add_test_cases(report.results.iter().map(test_case));
    let mut junit = Junit::new("tcpconform");
    junit.set_time(seconds(report.duration_ms)).add_test_suite(suite);
    junit.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::schema::tests::sample;

    #[test]
    fn each_case_run_is_a_test_case_and_a_failure_carries_its_message_and_exchange() {
        let xml = render(&sample()).expect("serializable");
        assert_eq!(xml.matches("<testcase ").count(), 2);
        assert!(
            xml.contains(
                r#"<testcase name="closing/active_close::ipv4" classname="closing/active_close" time="0.013"/>"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="c.yaml:9:3: state: conn is FIN_WAIT2, the case expects TIME_WAIT" type="mismatch">"#),
            "{xml}"
        );
        assert!(
            xml.contains("0.000600s   state conn FIN_WAIT2"),
            "the exchange is in system-out: {xml}"
        );
        assert!(xml.contains(r#"<property name="kernel.release" value="6.18.0"/>"#));
    }

    #[test]
    fn skips_and_errors_have_their_own_elements() {
        let mut report = sample();
        report.results[0].verdict = VerdictName::Skip;
        report.results[0].reason = Some("net.ipv4.tcp_x does not exist on this kernel".into());
        report.results[1].verdict = VerdictName::Error;
        let xml = render(&report).expect("serializable");
        assert!(
            xml.contains(r#"<skipped message="net.ipv4.tcp_x does not exist on this kernel">"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<error message="#), "{xml}");
        assert!(!xml.contains("<failure"));
    }
}
