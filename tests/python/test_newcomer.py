"""A newcomer's first day, from Python: the client generated from the .proto at test time,
every refusal decoded the standard way (grpcio-status's `rpc_status.from_call`), the API
discovered through grpcio-reflection's own client, a trading day and a compliance year.
Figures are worked out by hand in the comments."""

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from conftest import auth

AUTHORITY, M1, M2, E1 = 1, 101, 102, 201


def refusal(error):
    """(code, ErrorInfo, BadRequest or None) of a refused call, decoded from its
    google.rpc.Status as any grpcio client does it."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status in {error}"
    assert status.code == error.code().value[0]
    info, bad = None, None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
    assert info is not None, f"no ErrorInfo in {status}"
    assert info.domain == "carbonx.cn"
    metadata = dict(error.trailing_metadata())
    assert metadata.get("x-carbonx-reason") == info.reason
    return error.code(), info, bad


def refused(call, request, who):
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=auth(who))
    return refusal(caught.value)


@pytest.fixture(scope="module")
def stubs(pb, server):
    channel = server.channel()

    class Stubs:
        trading = pb.trading_grpc.TradingServiceStub(channel)
        admin = pb.admin_grpc.AdminServiceStub(channel)
        registry = pb.registry_grpc.RegistryServiceStub(channel)
        compliance = pb.compliance_grpc.ComplianceServiceStub(channel)
        market = pb.market_data_grpc.MarketDataServiceStub(channel)

    yield Stubs
    channel.close()


@pytest.fixture(scope="module")
def market(pb, stubs):
    """The ministry's accounts and allowances, an instrument, funds, an open day."""
    r, a, reg = pb.registry, pb.admin, stubs.registry
    accounts = [
        (AUTHORITY, r.ACCOUNT_TYPE_NATIONAL_AUTHORITY, r.SECTOR_UNSPECIFIED, "Ministry"),
        (2, r.ACCOUNT_TYPE_RETIREMENT, r.SECTOR_UNSPECIFIED, "Retirement"),
        (3, r.ACCOUNT_TYPE_CANCELLATION, r.SECTOR_UNSPECIFIED, "Cancellation"),
        (M1, r.ACCOUNT_TYPE_MEMBER_FIRM, r.SECTOR_UNSPECIFIED, "Member One"),
        (M2, r.ACCOUNT_TYPE_MEMBER_FIRM, r.SECTOR_UNSPECIFIED, "Member Two"),
        (E1, r.ACCOUNT_TYPE_COVERED_ENTITY, r.SECTOR_POWER, "Power Plant One"),
    ]
    for account_id, kind, sector, name in accounts:
        reg.OpenAccount(r.OpenAccountRequest(idempotency_key=f"open-{account_id}",
                                             account_id=account_id, account_type=kind,
                                             sector=sector, name=name),
                        metadata=auth("ministry"))
    stubs.admin.CreateInstrument(a.CreateInstrumentRequest(vintage=2025, reference_price_fen=8_500),
                                 metadata=auth("ops"))
    reg.Issue(r.IssueRequest(idempotency_key="issue", authority_account_id=AUTHORITY,
                             unit="CEA2025", quantity_t=1_000_000), metadata=auth("ministry"))
    reg.ProposeTransfer(r.TransferRequest(idempotency_key="to-m1", from_account_id=AUTHORITY,
                                          to_account_id=M1, unit="CEA2025", quantity_t=10_000),
                        metadata=auth("ministry"))
    reg.MoveToTrading(r.MoveRequest(idempotency_key="deposit-m1", account_id=M1, unit="CEA2025",
                                    quantity_t=5_000), metadata=auth("m1"))
    for account_id in (M1, M2):
        # 1,000,000.00 yuan each.
        stubs.admin.CreditFunds(a.FundsRequest(transfer_id=account_id, account_id=account_id,
                                               amount_fen=100_000_000), metadata=auth("ops"))
    stubs.admin.OpenTradingDay(a.OpenTradingDayRequest(trading_date=20261130), metadata=auth("ops"))
    stubs.admin.SetPhase(a.SetPhaseRequest(phase=pb.common.PHASE_CONTINUOUS), metadata=auth("ops"))
    return True


def order(pb, account_id, client_order_id, side, price_fen, quantity_t, **extra):
    c = pb.common
    fields = dict(account_id=account_id, client_order_id=client_order_id, instrument="CEA2025",
                  side=side, order_type=c.ORDER_TYPE_LIMIT, time_in_force=c.TIME_IN_FORCE_DAY,
                  price_fen=price_fen, quantity_t=quantity_t)
    fields.update(extra)
    return pb.trading.PlaceOrderRequest(**fields)


def test_a_trading_day(pb, stubs, market):
    c, t = pb.common, stubs.trading
    # M1 offers 1,000 t at 85.00 yuan; M2 takes 600 t of it.
    sell = t.PlaceOrder(order(pb, M1, 9_001, c.SIDE_SELL, 8_500, 1_000), metadata=auth("m1"))
    assert sell.order.status == c.ORDER_STATUS_NEW and sell.order.leaves_t == 1_000
    buy = t.PlaceOrder(order(pb, M2, 7, c.SIDE_BUY, 8_500, 600), metadata=auth("m2"))
    assert buy.order.status == c.ORDER_STATUS_FILLED
    assert [(f.price_fen, f.quantity_t) for f in buy.fills] == [(8_500, 600)]
    # The filled order stays queryable (GetOrder and ListOrders' closed filter).
    filled = t.GetOrder(pb.trading.GetOrderRequest(account_id=M2, order_id=buy.order.order_id),
                        metadata=auth("m2"))
    assert (filled.status, filled.filled_t, filled.leaves_t) == (c.ORDER_STATUS_FILLED, 600, 0)
    # The rest of the offer, 400 t, is cancelled by the broker.
    cancelled = t.CancelOrder(pb.trading.CancelOrderRequest(account_id=M1,
                                                           order_id=sell.order.order_id),
                              metadata=auth("m1"))
    assert cancelled.cancelled_t == 400
    closed = t.ListOrders(pb.trading.ListOrdersRequest(account_id=M1, include_closed=True),
                          metadata=auth("m1"))
    assert [(o.client_order_id, o.status, o.filled_t) for o in closed.orders] == [
        (9_001, c.ORDER_STATUS_CANCELLED, 600)]
    live = t.ListOrders(pb.trading.ListOrdersRequest(account_id=M1), metadata=auth("m1"))
    assert list(live.orders) == []
    book = stubs.market.GetBook(pb.market_data.GetBookRequest(instrument="CEA2025"),
                                metadata=auth("m1"))
    assert list(book.asks) == [] and list(book.bids) == []


def test_refusals_decode_as_standard_grpc_errors(pb, stubs, market):
    c, t = pb.common, stubs.trading
    # A bad field: INVALID_ARGUMENT, ErrorInfo reason INVALID_FIELD with the field in its
    # metadata, and a BadRequest violation naming it.
    code, info, bad = refused(t.PlaceOrder, order(pb, M2, 8, c.SIDE_BUY, 8_500, 0), "m2")
    assert (code, info.reason, info.metadata["field"]) == (
        grpc.StatusCode.INVALID_ARGUMENT, "INVALID_FIELD", "quantity_t")
    assert [v.field for v in bad.field_violations] == ["quantity_t"]
    # A business refusal: 50,000 t at 85.00 = 4,250,000.00 yuan, more than the
    # 1,000,000.00 credited.
    code, info, bad = refused(t.PlaceOrder, order(pb, M2, 9, c.SIDE_BUY, 8_500, 50_000), "m2")
    assert (code, info.reason, bad) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_FUNDS", None)
    # FOK and post-only together name the field.
    code, info, _ = refused(t.PlaceOrder, order(pb, M2, 10, c.SIDE_BUY, 8_500, 100,
                                                time_in_force=c.TIME_IN_FORCE_FOK,
                                                post_only=True), "m2")
    assert (info.reason, info.metadata["field"]) == ("INVALID_FIELD", "post_only")
    # An unknown 20,000-character instrument: the refusal stays readable, its echo cut.
    with pytest.raises(grpc.RpcError) as caught:
        t.PlaceOrder(order(pb, M2, 11, c.SIDE_BUY, 8_500, 100, instrument="X" * 20_000),
                     metadata=auth("m2"))
    code, info, _ = refusal(caught.value)
    assert (code, info.reason, info.metadata["field"]) == (
        grpc.StatusCode.NOT_FOUND, "UNKNOWN_INSTRUMENT", "instrument")
    assert len(caught.value.details().encode()) <= 512
    # A request over the 64 KiB message limit is refused like any other.
    code, info, _ = refused(t.PlaceOrder, order(pb, M2, 12, c.SIDE_BUY, 8_500, 100,
                                                instrument="X" * 70_000), "m2")
    assert (code, info.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "MESSAGE_TOO_LARGE")
    # A bare token, without "Bearer ", is refused.
    with pytest.raises(grpc.RpcError) as caught:
        t.ListOrders(pb.trading.ListOrdersRequest(account_id=M2),
                     metadata=[("authorization", "py-token-member-m2-0001")])
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # Another member's account: PERMISSION_DENIED.
    code, info, _ = refused(t.ListOrders, pb.trading.ListOrdersRequest(account_id=M1), "m2")
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_reflection_with_grpcio_reflections_client(pb, server, market):
    channel = server.channel()
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    for name in ["carbonx.v1.TradingService", "carbonx.v1.RegistryService",
                 "carbonx.v1.ComplianceService", "grpc.health.v1.Health"]:
        assert name in services, services
    # A client built from reflection alone (no generated code): GetMarketStatus.
    pool = descriptor_pool.DescriptorPool(database)
    method = pool.FindServiceByName("carbonx.v1.MarketDataService").methods_by_name[
        "GetMarketStatus"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary("/carbonx.v1.MarketDataService/GetMarketStatus",
                               request_serializer=request_class.SerializeToString,
                               response_deserializer=reply_class.FromString)
    status = call(request_class(), metadata=auth("ops"))
    assert status.trading_date == 20261130
    channel.close()


def test_a_compliance_year(pb, stubs, market):
    cp, r = pb.compliance, pb.registry
    c = stubs.compliance
    plan = (pathlib_root() / "registry" / "plans" / "2025-draft.toml").read_text()
    c.RegisterPlan(cp.RegisterPlanRequest(idempotency_key="plan-2025", plan_toml=plan),
                   metadata=auth("ministry"))
    unit = cp.Facility(facility_id=1, kind=cp.FACILITY_KIND_GENERATING_UNIT, fuel=cp.FUEL_COAL,
                       capacity_mw=600)
    c.LoadEntities(cp.LoadEntitiesRequest(idempotency_key="entities", rows=[
        cp.EntityRow(account_id=E1, name="Power Plant One", sector=r.SECTOR_POWER,
                     province="Hebei", facilities=[unit])]), metadata=auth("ministry"))
    c.RecordVerified(cp.RecordVerifiedRequest(idempotency_key="verified-2024", year=2024, rows=[
        cp.VerifiedRow(account_id=E1, co2_t=2_500_000)]), metadata=auth("ministry"))
    run = lambda key, kind: cp.RunAllocationRequest(idempotency_key=key, year=2025,
                                                    plan_version="2025.draft", kind=kind)
    pre = c.RunAllocation(run("pre-2025", cp.RUN_KIND_PRE_ALLOCATION), metadata=auth("ministry"))
    # The plan pre-allocates power 50% of the 2024 base: 2,500,000 x 0.5 = 1,250,000 t.
    assert (pre.entities, pre.allocated_t) == (1, 1_250_000)
    c.LoadActivity(cp.LoadActivityRequest(idempotency_key="activity-2025", year=2025, rows=[
        cp.ActivityRow(account_id=E1, facility_id=1, electricity_mwh="3100000",
                       heat_gj="100000", load_factor="0.55", emissions_t="2700000")]),
        metadata=auth("ministry"))
    c.RecordVerified(cp.RecordVerifiedRequest(idempotency_key="verified-2025", year=2025, rows=[
        cp.VerifiedRow(account_id=E1, co2_t=2_700_000)]), metadata=auth("verifier"))
    c.RunAllocation(run("true-up-2025", cp.RUN_KIND_TRUE_UP), metadata=auth("ministry"))
    e1 = c.GetCompliance(cp.GetComplianceRequest(year=2025, account_id=E1), metadata=auth("e1"))
    # Load factor 55% (>= 50%): no load correction. 3,100,000 MWh x 0.7902 = 2,449,620 t and
    # 100,000 GJ x 0.1027 = 10,270 t: 2,459,890 t allocated against 2,700,000 t verified.
    assert (e1.allocated_t, e1.obligation_t) == (2_459_890, 2_700_000)
    # The entity surrenders all it was given; 240,110 t short.
    c.Surrender(cp.SurrenderRequest(idempotency_key="surrender", account_id=E1, unit="CEA2025",
                                    quantity_t=2_459_890, year=2025), metadata=auth("e1"))
    e1 = c.GetCompliance(cp.GetComplianceRequest(year=2025, account_id=E1), metadata=auth("e1"))
    assert (e1.surrendered_cea_t, e1.shortfall_t) == (2_459_890, 240_110)
    # Surrendering more than it holds is refused, naming the quantity.
    code, info, _ = refused(c.Surrender, cp.SurrenderRequest(
        idempotency_key="surrender-more", account_id=E1, unit="CEA2025", quantity_t=1,
        year=2025), "e1")
    assert (code, info.reason, info.metadata["field"]) == (
        grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_AVAILABLE", "quantity_t")


def pathlib_root():
    from conftest import ROOT

    return ROOT
