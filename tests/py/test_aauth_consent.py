"""Consent, black box: when the issuer asks for a person's approval (200
request_token + authorization_uri, or the older 401 authorization_required
+ auth_url), requests for the resource get 403 with the URL and one
sentence on what to do, the URL is logged once at warn, the browser's
redirect to redirect_uri?code=… on the proxy's own listener completes the
exchange (request_type=code with the same redirect_uri), shows a short
page, and traffic resumes. The code never reaches a log."""

import time

import pytest

from aauth_helpers import (aauth_cfg, aresource, assert_no_secrets, free_port, get,  # noqa: F401
                           get_json, issuer, lines_with, raw_request, wait_status)


def browser_get(proxy, path):
    """What the person's browser sends: origin-form, straight to us."""
    data = (f"GET {path} HTTP/1.1\r\nHost: {proxy.host}:{proxy.port}\r\n"
            "User-Agent: Mozilla/5.0\r\nConnection: close\r\n\r\n")
    st, hd, body = raw_request(proxy.addr, data, timeout=20)
    return st, dict(hd), body


@pytest.mark.parametrize("mode", ["consent", "consent401"])
def test_consent_403_then_callback_then_traffic(proxy_factory, issuer, aresource, tmp_path,
                                                mode):
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/.aauth/callback"
    issuer.redirect_uri = redirect
    issuer.scope = "documents:read"
    issuer.set_mode(mode)
    cfg = aauth_cfg(issuer, aresource, tmp_path, listen_port=port,
                    scope="documents:read", redirect_uri=redirect)
    cfg["log"] = {"level": "debug"}  # no secret at any level
    p = proxy_factory(cfg)
    st, hd, body = get_json(p, aresource.url("/doc"))
    assert st == 403, body
    assert body["error"] == "consent_required" and body["resource"] == "docs", body
    url = body["authorization_uri"]
    assert url.startswith(f"http://127.0.0.1:{issuer.port}/portal/aauth/authorize?request_token=")
    assert "browser" in body["detail"], body
    assert not aresource.records(), "a request went out without a token"
    # More requests: the same answer, the URL logged once at warn.
    for _ in range(3):
        assert get(p, aresource.url("/doc"))[0] == 403
    p.wait_for(lambda _: lines_with(p, url, "warn"), timeout=5)
    p.wait_access(4, timeout=5)  # the log has caught up with the requests
    assert len(lines_with(p, url, "warn")) == 1, lines_with(p, url)
    auth = issuer.token_requests(["auth"])[0]
    assert auth.json["redirect_uri"] == redirect and auth.json["scope"] == "documents:read"

    # The person approves; the browser comes back to the proxy.
    code = issuer.approve()
    st, hd, page = browser_get(p, f"/.aauth/callback?code={code}&state=x")
    assert st == 200, page
    assert b"close this page" in page, page
    assert hd.get("content-type", "").startswith("text/plain")
    creq = issuer.token_requests(["code"])
    assert len(creq) == 1 and creq[0].json == {"request_type": "code", "code": code,
                                                "redirect_uri": redirect}, creq
    st, hd, body = get_json(p, aresource.url("/doc"))
    assert st == 200, body
    assert aresource.records()[-1]["verdict"] == "valid"
    # The code is spent: the same callback again finds nothing pending.
    st, _, page = browser_get(p, f"/.aauth/callback?code={code}")
    assert st == 409, page
    assert_no_secrets(p.stderr_text(), issuer, extra=[code])


def test_consent_denied_and_bad_callbacks(proxy_factory, issuer, aresource, tmp_path):
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/cb/docs"
    issuer.set_mode("consent")
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path, listen_port=port,
                                redirect_uri=redirect))
    assert get(p, aresource.url("/x"))[0] == 403
    st, _, page = browser_get(p, "/cb/docs?error=access_denied")
    assert st == 400 and b"access_denied" in page, page
    st, _, page = browser_get(p, "/cb/docs?code=a&code=b")
    assert st == 400, page
    st, _, page = browser_get(p, "/cb/docs?code=%zz")
    assert st == 400, page
    # Another path on the listener is still a usage error, not a callback.
    st, _, body = browser_get(p, "/cb/other?code=x")
    assert st == 400 and b"not_a_proxy_request" in body, body
    # A wrong code: the issuer says invalid_grant, the proxy asks again.
    st, _, page = browser_get(p, "/cb/docs?code=not-a-code")
    assert st == 403, page
    assert get(p, aresource.url("/x"))[0] == 403
    assert p.alive()


def test_consent_without_redirect_uri_says_so(proxy_factory, issuer, aresource, tmp_path):
    issuer.set_mode("consent")
    p = proxy_factory(aauth_cfg(issuer, aresource, tmp_path))
    st, _, body = get_json(p, aresource.url("/x"))
    assert st == 403 and "redirect_uri" in body["detail"], body
