"""The 401 retry and the resource's challenge, black box: a 401 from the
resource while the token looks valid forces one refresh (single flight)
and one retry of that request with a fresh signature (new nonce, new
created); a second 401 reaches the client unchanged. With
resource_token "challenge" the first request goes without a token, the
resource's AAuth-Requirement supplies the resource token, and the request
is retried once with the token obtained with it."""

import threading
import time

from aauth_helpers import (aauth_cfg, aresource, assert_no_secrets, get, get_json,  # noqa: F401
                           issuer, wait_status)


def test_401_forces_a_refresh_and_one_retry_with_a_new_nonce(proxy_factory, issuer,
                                                              aresource, tmp_path):
    issuer.lifetime = 30
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    assert wait_status(p, aresource.url("/warm"))[0] == 200
    t1 = aresource.records()[-1]["token"]
    time.sleep(1.1)  # a token refused at once is not refreshed (rate bound)
    aresource.refuse.add(t1)  # revoked at the resource, still "valid" here
    n = len(aresource.records())
    st, hd, body = get_json(p, aresource.url("/doc"))
    assert st == 200, body
    recs = aresource.records()[n:]
    assert [r["verdict"] for r in recs] == ["refused", "valid"], recs
    first, retry = recs
    assert first["token"] == t1 and retry["token"] != t1
    assert retry["nonce"] != first["nonce"]
    assert retry["created"] >= first["created"]
    assert [r.type for r in issuer.token_requests()] == ["auth", "refresh"]
    # Later requests use the new token directly.
    n = len(aresource.records())
    assert get(p, aresource.url("/after"))[0] == 200
    assert [r["verdict"] for r in aresource.records()[n:]] == ["valid"]
    assert_no_secrets(p.stderr_text(), issuer)


def test_second_401_goes_to_the_client_and_refresh_is_single_flight(proxy_factory, issuer,
                                                                    aresource, tmp_path):
    issuer.lifetime = 30
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    assert wait_status(p, aresource.url("/warm"))[0] == 200
    time.sleep(1.1)
    aresource.refuse_all = True
    n = len(aresource.records())
    results = []
    lock = threading.Lock()

    def one(i):
        r = get_json(p, aresource.url(f"/r{i}"))
        with lock:
            results.append(r)

    ts = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    # Each client got the resource's own 401, after exactly two tries.
    assert [r[0] for r in results] == [401] * 12, results
    assert all(r[2]["error"] == "refused" for r in results), results
    recs = aresource.records()[n:]
    paths = [r["path"] for r in recs]
    assert all(paths.count(f"/r{i}") == 2 for i in range(12)), paths
    assert len({r["nonce"] for r in recs}) == len(recs)
    # One forced refresh for all twelve.
    assert [r.type for r in issuer.token_requests()] == ["auth", "refresh"]


def test_challenge_supplies_the_resource_token(proxy_factory, issuer, aresource, tmp_path):
    issuer.lifetime = 30
    rt = "rt-challenge-" + "c" * 10
    issuer.resource_tokens = {rt}
    aresource.challenge = rt
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, resource_token="challenge"))
    time.sleep(0.3)
    assert issuer.token_requests() == [], "nothing to ask with before the challenge"
    st, hd, body = get_json(p, aresource.url("/c"))
    assert st == 200, body
    recs = aresource.records()
    assert [r["verdict"] for r in recs] == ["no_token", "valid"], recs
    assert recs[0]["token"] is None and recs[1]["nonce"] != recs[0]["nonce"]
    reqs = issuer.token_requests()
    assert [r.type for r in reqs] == ["auth"] and reqs[0].json["resource_token"] == rt
    assert get(p, aresource.url("/d"))[0] == 200
    assert len(issuer.token_requests()) == 1
    assert_no_secrets(p.stderr_text(), issuer, extra=[rt])


def test_401_without_challenge_and_without_token_is_relayed(proxy_factory, issuer, aresource,
                                                             tmp_path):
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, resource_token="challenge"))
    st, _, body = get_json(p, aresource.url("/c"))
    assert st == 401 and body["error"] == "no_token", body
    assert len(aresource.records()) == 1
    assert issuer.token_requests() == []
