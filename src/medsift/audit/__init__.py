"""Dataset audit: pluggable checks that score every image, findings, per-image scores, an HTML report.

Public API::

    run_audit(df, *, workspace=None, checks=None, learned=True, n_jobs=2, scheduler=None) -> AuditResult
    write_audit(result, workspace) -> dict of paths      # findings.csv, scores.parquet, summary.json, report.html
    evaluate_against_truth(findings, truth_defects_csv) -> DataFrame (per defect kind: precision, recall, n)
    CHECKS                                               # registry: name -> check(ctx) -> CheckResult
"""

from medsift.audit import consistency, duplicates, integrity, orientation, outliers, pairing, sequence  # noqa: F401  (register checks)
from medsift.audit.base import CHECK_NAMES, CHECKS, FINDING_COLUMNS, AuditContext, CheckResult, Severity
from medsift.audit.evaluate import evaluate_against_truth
from medsift.audit.outputs import read_findings, write_audit
from medsift.audit.runner import AuditResult, run_audit


__all__ = ["CHECKS", "CHECK_NAMES", "FINDING_COLUMNS", "AuditContext", "AuditResult", "CheckResult", "Severity",
           "run_audit", "write_audit", "read_findings", "evaluate_against_truth"]
