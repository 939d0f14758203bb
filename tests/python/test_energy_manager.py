"""A steel works' energy manager, from Python: the monitoring plan, twelve months of data
with their evidence hashes, a refused row decoded the standard way (BadRequest names the
cell), the annual report with the working of each line. Figures worked out by hand."""

import hashlib

import grpc
import pytest

from conftest import auth
from test_newcomer import pathlib_root, refused

E1 = 201


@pytest.fixture(scope="module")
def emissions(pb, server):
    channel = server.channel()
    cp, r = pb.compliance, pb.registry
    compliance = pb.compliance_grpc.ComplianceServiceStub(channel)
    line = lambda fid, name, process: cp.Facility(
        facility_id=fid, kind=cp.FACILITY_KIND_PRODUCT_LINE, product_line=name, process=process)
    compliance.LoadEntities(cp.LoadEntitiesRequest(idempotency_key="entities", rows=[
        cp.EntityRow(account_id=E1, name="Hebei Iron & Steel", sector=r.SECTOR_STEEL,
                     province="Hebei", facilities=[
                         line(2, "sinter plant", cp.INDUSTRIAL_PROCESS_SINTERING),
                         line(3, "BF 1", cp.INDUSTRIAL_PROCESS_IRONMAKING)])]),
        metadata=auth("ministry"))
    stub = pb.emissions_grpc.EmissionsServiceStub(channel)
    factors = (pathlib_root() / "registry" / "factors" / "steel-2024.toml").read_text()
    stub.RegisterFactors(pb.emissions.RegisterFactorsRequest(
        idempotency_key="factors", year=2025, factors_toml=factors), metadata=auth("ministry"))
    yield stub
    channel.close()


def month(em, m, limestone="5000.00"):
    row = lambda fid, role, item, q: em.EmissionsRow(facility_id=fid, role=role, item=item,
                                                     quantity=q)
    ledger = f"fuel ledger 2025-{m:02}".encode()
    return em.DepositMonthRequest(
        idempotency_key=f"month-{m}", account_id=E1, year=2025, month=m,
        rows=[row(0, "consumed", "coke", "40000.00"),
              row(0, "consumed", "bituminous", "10000.00"),
              row(0, "consumed", "limestone", limestone),
              row(0, "produced", "crude_steel", "100000.00"),
              row(2, "consumed", "coke", "5000.00"),
              row(2, "produced", "sinter", "120000.00"),
              row(3, "consumed", "coke", "30000.00"),
              row(3, "consumed", "bituminous", "10000.00"),
              row(3, "produced", "bfg", "12000.00"),
              row(3, "produced", "hot_metal", "90000.00")],
        readings=[em.ParameterReading(parameter="ncv", fuel="bituminous", value="24.000",
                                      evidence=f"CNAS L1234 2025-{m:02}")],
        evidence=[em.EvidenceDocument(kind="fuel ledger", name=f"ledger-2025-{m:02}.pdf",
                                      sha256=hashlib.sha256(ledger).digest(),
                                      size_bytes=len(ledger))])


def test_a_year_of_deposits_and_its_report(pb, emissions):
    em = pb.emissions
    emissions.SetMonitoringPlan(em.SetMonitoringPlanRequest(
        idempotency_key="plan", account_id=E1, year=2025,
        facilities=[em.MonitoredFacility(id=2, name="sinter plant", kind="sintering"),
                    em.MonitoredFacility(id=3, name="BF 1", kind="ironmaking")],
        meters=[em.Meter(id="WB-01", measures="coal weighbridge", calibrated=20250105)],
        measured=[em.MeasuredParameter(parameter="ncv", fuel="bituminous")]),
        metadata=auth("e1"))
    # A typing slip: 5,000.005 t has three places; refused, the cell named.
    code, info, bad = refused(emissions.DepositMonth, month(em, 1, limestone="5000.005"), "e1")
    assert (code, info.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_EMISSIONS_DATA")
    assert bad.field_violations[0].field == "rows[2].quantity"
    for m in range(1, 13):
        emissions.DepositMonth(month(em, m), metadata=auth("e1"))
    jan = emissions.GetMonth(em.GetMonthRequest(account_id=E1, year=2025, month=1),
                             metadata=auth("e1"))
    assert len(jan.versions) == 1 and len(jan.versions[0].rows) == 10
    assert jan.versions[0].evidence[0].sha256 == hashlib.sha256(b"fuel ledger 2025-01").digest()
    emissions.SubmitReport(em.SubmitReportRequest(idempotency_key="report", account_id=E1,
                                                  year=2025), metadata=auth("e1"))
    report = emissions.GetEmissionsReport(em.GetEmissionsReportRequest(account_id=E1, year=2025),
                                          metadata=auth("verifier"))
    # coke 480,000.00 x 28.435 x 0.02942 x 44/12 = 1,472,341.55; bituminous 120,000.00 x
    # 24.000 x 0.02618 x 44/12 = 276,460.80; limestone 60,000.00 x 0.440 = 26,400.00;
    # crude steel -1,200,000.00 x 0.037 = -44,400.00: 1,730,802.35 -> 1,730,802 t.
    assert (report.enterprise_t, report.total_t) == ("1730802.35", 1_730_802)
    limestone = next(l for l in report.lines if l.item == "limestone")
    assert limestone.working == "60000.00 t x EF 0.440 tCO2/t = 26400.00"
