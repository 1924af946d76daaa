"""The fake Salesforce answers in Salesforce's documented REST shapes (raw HTTP, no client library)."""

from __future__ import annotations

import requests

from tests.fakes.salesforce_api import FakeSalesforce, to18


def _token(fake: FakeSalesforce, secret: str | None = None) -> requests.Response:
    return requests.post(f"{fake.login_url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                         auth=(fake.client_id, secret or fake.client_secret), verify=fake.ca_file, timeout=5)


def test_token_query_patch_and_errors():
    with FakeSalesforce() as fake:
        fake.add_field("Why_Now__c", type="textarea")
        fake.add_opportunity("0065g00000AbCdE", stage="Discovery", account="Acme")
        bad = _token(fake, "nope")
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
        tok = _token(fake).json()
        assert tok["token_type"] == "Bearer" and tok["instance_url"] == fake.url
        base = f"{tok['instance_url']}/services/data/v59.0"
        h = {"Authorization": f"Bearer {tok['access_token']}"}
        kw = {"headers": h, "verify": fake.ca_file, "timeout": 5}

        q = requests.get(f"{base}/query", params={"q": "SELECT Id, StageName, Account.Name FROM Opportunity "
                                                       "WHERE Id = '0065g00000AbCdE'"}, **kw)
        assert q.headers["Sforce-Limit-Info"].startswith("api-usage=")
        body = q.json()
        assert body["totalSize"] == 1 and body["done"] is True
        assert body["records"][0]["Account"]["Name"] == "Acme"
        assert body["records"][0]["attributes"]["type"] == "Opportunity"
        assert body["records"][0]["Id"] == to18("0065g00000AbCdE") == "0065g00000AbCdEAAV"

        r = requests.get(f"{base}/query", params={"q": "SELECT Nope__c FROM Opportunity"}, **kw)
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD"

        r = requests.patch(f"{base}/sobjects/Opportunity/0065g00000AbCdE", json={"IsClosed": True}, **kw)
        assert r.status_code == 400 and r.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
        fake.reject_field("Why_Now__c", "Too short")
        r = requests.patch(f"{base}/sobjects/Opportunity/0065g00000AbCdE", json={"Why_Now__c": "x"}, **kw)
        assert r.json() == [{"message": "Too short", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                             "fields": ["Why_Now__c"]}]
        fake.clear_rejections()
        r = requests.patch(f"{base}/sobjects/Opportunity/0065g00000AbCdE", json={"Why_Now__c": "x"}, **kw)
        assert r.status_code == 204 and fake.opportunity("0065g00000AbCdE")["Why_Now__c"] == "x"

        r = requests.get(f"{base}/sobjects/Opportunity/006bm00000ZpLmN", **kw)
        assert r.status_code == 404 and r.json()[0]["errorCode"] == "NOT_FOUND"

        fake.expire_tokens()
        r = requests.get(f"{base}/sobjects/Opportunity/describe", **kw)
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"

        fake.fail("*", status=403)
        r = requests.post(f"{fake.login_url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                          verify=fake.ca_file, timeout=5)
        assert r.status_code == 403 and r.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        assert [c.route for c in fake.calls][:2] == ["token", "token"]
