"""Reports: ``summary.md`` now; the HTML report, figures and contact sheets build on it."""
