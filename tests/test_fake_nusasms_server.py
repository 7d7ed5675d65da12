"""The NusaSMS fake served over real HTTP on 127.0.0.1, and the fake's own SMS behaviour."""

from __future__ import annotations

import httpx
import pytest
from defusedxml import ElementTree

from providers.base import DeliveryState, OutgoingMessage
from providers.errors import ProviderUnavailable
from providers.http import make_http_client
from providers.nusasms import NusaSmsClient, NusaSmsSettings
from providers.ratelimit import AccountLimiters
from tests.fakes.httpserver import ServerThread, serve
from tests.fakes.nusasms import FakeNusaSms

KEY = "test-api-key"


async def test_send_and_status_over_a_real_socket() -> None:
    fake = FakeNusaSms()
    async with serve(fake) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        assert base_url.startswith("http://127.0.0.1:")
        headers = {"APIKey": KEY}
        sent = await http.post(
            "/nusasms_api/1.0/whatsapp/message",
            json={"destination": "6281234567890", "message": "Halo 😀"},
            headers=headers,
        )
        ref = sent.json()["data"]["ref_no"]
        queued = await http.get(f"/nusasms_api/1.0/whatsapp/status/{ref}", headers=headers)
        fake.set_status(ref, "R")
        read = await http.get(f"/nusasms_api/1.0/whatsapp/status/{ref}", headers=headers)
        refused = await http.get("/nusasms_api/1.0/balance", headers={"APIKey": "nope"})

    assert sent.status_code == 201
    assert sent.headers["Content-Type"] == "application/json"
    assert [m.ref_no for m in fake.sent] == [ref]
    assert fake.sent[0].message == "Halo 😀"
    assert queued.json()["data"]["status"] == "Q"
    assert read.json()["data"]["status"] == "R"
    assert read.json()["data"]["read_date"] is not None
    assert refused.status_code == 401
    # The handler saw what the client sent: URL, headers and body survive the bridge.
    first = fake.requests[0]
    assert first.url.host == "127.0.0.1"
    assert first.headers["APIKey"] == KEY
    assert fake.json_body(0) == {"destination": "6281234567890", "message": "Halo 😀"}


async def test_the_adapter_works_over_the_bridge_and_a_dropped_connection_is_unavailable() -> None:
    fake = FakeNusaSms()
    async with serve(fake) as base_url, make_http_client(timeout=5.0) as http:
        settings = NusaSmsSettings(base_url=f"{base_url}/nusasms_api/1.0")
        limiter = AccountLimiters().get("nusasms", KEY, interval=0.001)
        client = NusaSmsClient(http, api_key=KEY, limiter=limiter, settings=settings)
        message = OutgoingMessage(channel="wa", to="6281234567890", text="hi")
        result = await client.send(message)
        fake.set_status(result.ref, "D")
        report = await client.status(result.ref)
        # raise_next on a real server hangs up without an answer, after reading the request.
        fake.raise_next(lambda r: httpx.ReadTimeout("simulated", request=r))
        with pytest.raises(ProviderUnavailable) as caught:
            await client.send(message)

    assert report.state is DeliveryState.DELIVERED
    assert caught.value.maybe_sent is True
    assert len(fake.sent) == 1


def test_server_thread_serves_the_sms_api_to_a_sync_client() -> None:
    fake = FakeNusaSms()
    with ServerThread(fake) as server, httpx.Client(base_url=server.base_url) as http:
        creds = {"user": "sms-user", "password": "sms-password"}
        xml = http.get(
            "/api/v3/sendsms/plain", params={**creds, "SMSText": "a < b", "GSM": "628510080338"}
        )
        as_json = http.post(
            "/api/v3/sendsms/plain",
            params={**creds, "SMSText": "Kode 1234", "GSM": "628510080339", "output": "json"},
        )
        bad_user = http.get(
            "/api/v3/sendsms/plain",
            params={"user": "x", "password": "y", "SMSText": "t", "GSM": "6285", "output": "json"},
        )
        group = http.get(
            "/api/v3/sendsms/group",
            params={**creds, "SMSText": "promo", "group": "Nobody", "output": "json"},
        )
        credits = http.get("/api/command", params={**creds, "cmd": "CREDITS", "output": "json"})

    result = ElementTree.fromstring(xml.content).find("result")
    assert result is not None
    assert result.findtext("status") == "0"
    assert result.findtext("destination") == "628510080338"
    [row] = as_json.json()["results"]
    assert row["status"] == "0"
    assert row["messageid"] == fake.sms_sent[1].messageid
    assert [m.text for m in fake.sms_sent] == ["a < b", "Kode 1234"]
    assert bad_user.json() == {
        "results": [{"status": "-5", "messageid": "", "destination": "6285"}]
    }
    assert group.json()["results"][0]["status"] == "-55"
    assert group.json()["results"][0]["group"] == "Nobody"
    assert credits.json() == {"results": [{"status": "0", "credits": "998"}]}
    assert server.base_url.startswith("http://127.0.0.1:")


# -- the fake's own behaviour, for adapters still to be written ----------------------------------

SMS_CREDS = {"user": "sms-user", "password": "sms-password", "output": "json"}


def sms_status(fake: FakeNusaSms, path: str, params: dict[str, str]) -> str:
    with httpx.Client(transport=httpx.MockTransport(fake), base_url="http://sms.test/api") as http:
        status: str = http.get(path, params=params).json()["results"][0]["status"]
    return status


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({**SMS_CREDS, "GSM": "628123456789", "SMSText": "hi"}, "0", id="ok"),
        pytest.param(
            {**SMS_CREDS, "password": "bad", "GSM": "628123456789", "SMSText": "hi"},
            "-5",
            id="bad-password",
        ),
        pytest.param({**SMS_CREDS, "SMSText": "hi"}, "-6", id="no-gsm"),
        pytest.param({**SMS_CREDS, "GSM": "628123456789"}, "-12", id="no-text"),
        pytest.param({**SMS_CREDS, "GSM": "085100803380", "SMSText": "hi"}, "-13", id="local"),
    ],
)
def test_fake_sms_plain_status_codes(params: dict[str, str], expected: str) -> None:
    fake = FakeNusaSms()
    assert sms_status(fake, "/v3/sendsms/plain", params) == expected
    assert len(fake.sms_sent) == (1 if expected == "0" else 0)


def test_fake_sms_forced_codes_credits_and_delivery_reports() -> None:
    fake = FakeNusaSms()
    fake.credit.sms_balance = 3
    send = {**SMS_CREDS, "GSM": "628123456789", "SMSText": "x" * 161}  # two parts
    fake.sms_status_next("-78")
    assert sms_status(fake, "/v3/sendsms/plain", send) == "-78"
    assert sms_status(fake, "/v3/sendsms/plain", send) == "0"
    assert sms_status(fake, "/v3/sendsms/plain", send) == "-2"  # one credit left
    assert fake.credit.sms_balance == 1
    [sms] = fake.sms_sent
    fake.set_sms_dr(sms.messageid, "DELIVERED")
    with httpx.Client(transport=httpx.MockTransport(fake), base_url="http://sms.test/api") as http:
        credits = http.get("/command", params={**SMS_CREDS, "cmd": "CREDITS"}).json()
        report = http.get("/command", params={**SMS_CREDS, "cmd": "DR", "ref_no": sms.messageid})
        missing = http.get("/command", params={**SMS_CREDS, "cmd": "DR", "ref_no": "404"})
    assert credits == {"results": [{"status": "0", "credits": "1"}]}
    assert report.json()["results"] == [
        {"status": "0", "messageid": sms.messageid, "dr_status": "DELIVERED"}
    ]
    assert missing.json()["results"][0]["status"] == "-1"


def test_fake_sms_group_campaigns() -> None:
    fake = FakeNusaSms()
    fake.sms_groups["Staff"] = ["6281200000009"]
    base = {**SMS_CREDS, "SMSText": "rapat jam 9"}
    assert sms_status(fake, "/v3/sendsms/group", {**base, "group": "Staff"}) == "0"
    assert sms_status(fake, "/v3/sendsms/group", {**base, "group": "Nobody"}) == "-55"
    [campaign] = fake.sms_campaigns
    assert (campaign.group, campaign.destinations) == ("Staff", ["6281200000009"])
    assert campaign.campaign_name.startswith("Group-Api-Campaign-")


async def test_fake_phone_check_validates_and_stores() -> None:
    fake = FakeNusaSms()
    transport = httpx.MockTransport(fake)
    async with httpx.AsyncClient(transport=transport, headers={"APIKey": KEY}) as http:
        url = "http://nusasms.test/nusasms_api/1.0/wa_phone_check"
        too_many = await http.post(url, json={"phone_numbers": ["62812345678"] * 101})
        too_short = await http.post(url, json={"phone_numbers": ["62812345678", "1234"]})
        ok = await http.post(
            url,
            json={"phone_numbers": ["62812345678"], "callback_url": "https://cb.test/wa"},
        )
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["type"] == "value_error.list.max_items"
    assert too_short.status_code == 422
    assert too_short.json()["detail"][0]["loc"] == ["body", "phone_numbers", 1]
    assert ok.status_code == 201
    assert ok.json() == {"error": False, "error_code": 0, "message": "Success", "data": None}
    assert [(c.phone_numbers, c.callback_url) for c in fake.phone_checks] == [
        (["62812345678"], "https://cb.test/wa")
    ]
