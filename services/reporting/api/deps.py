"""What the routes are given: the use cases (composed once in `app.py`, kept on the app) and who may submit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.reporting.usecases.certificates import Certificates
from services.reporting.usecases.queries import Queries
from services.reporting.usecases.reports import Reports
from services.reporting.usecases.submissions import Submit
from shared.identity import require_roles

SUBMITTERS = require_roles("unit_admin", "province_admin")
REVIEWERS = require_roles("province_admin")


def _queries(request: Request) -> Queries:
    queries: Queries = request.app.state.queries
    return queries


def _submit(request: Request) -> Submit:
    submit: Submit = request.app.state.submit
    return submit


def _reports(request: Request) -> Reports:
    reports: Reports = request.app.state.reports
    return reports


def _certificates(request: Request) -> Certificates:
    certificates: Certificates = request.app.state.certificates
    return certificates


QueriesDep = Annotated[Queries, Depends(_queries)]
SubmitDep = Annotated[Submit, Depends(_submit)]
CertificatesDep = Annotated[Certificates, Depends(_certificates)]
ReportsDep = Annotated[Reports, Depends(_reports)]
