"""Reports from run directories: ``report.html``, ``summary.md``, comparisons, exports, labelling sheets.

One concept per module: ``rundata`` (what is read), ``roles``, ``primary`` and ``trust`` (which
judge gives a headline number and whether to trust it), ``verdict``, ``prompt_sets``,
``adherence``, ``validity``, ``contact_sheets``, ``provenance`` (the sections), ``figures``,
``palette``, ``thumbnails``, ``html`` (rendering with the templates under ``templates/``),
``build`` (the report stage), ``summary``, ``compare_report``, ``export``, ``labelling``.
Importing this package loads neither matplotlib nor jinja2.
"""
