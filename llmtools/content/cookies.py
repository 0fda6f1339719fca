"""Netscape cookies.txt files: what browser extensions, curl -c and yt-dlp write.

Each line is seven tab-separated fields:

    domain  include-subdomains  path  secure  expires  name  value

`include-subdomains` and `secure` are TRUE or FALSE; `expires` is a Unix time, 0 for a
session cookie. Lines starting with `#` are comments, except `#HttpOnly_` which
prefixes the domain of an HttpOnly cookie (curl's convention). Written by hand here
because http.cookiejar.MozillaCookieJar insists on the magic first line and drops
HttpOnly cookies, which are exactly the session cookies a logged-in page needs.
"""

from __future__ import annotations

import dataclasses
import http.cookiejar

from llmtools.errors import InputError, UsageError

HTTPONLY_PREFIX = "#HttpOnly_"


@dataclasses.dataclass(frozen=True)
class Cookie:
    domain: str  # without a leading dot
    include_subdomains: bool
    path: str
    secure: bool
    expires: int | None  # Unix time; None for a session cookie
    name: str
    value: str
    http_only: bool = False

    def for_playwright(self) -> dict:
        """The dict BrowserContext.add_cookies() takes (a leading dot = subdomains too)."""
        cookie = {
            "name": self.name,
            "value": self.value,
            "domain": ("." if self.include_subdomains else "") + self.domain,
            "path": self.path,
            "secure": self.secure,
            "httpOnly": self.http_only,
        }
        if self.expires is not None:
            cookie["expires"] = self.expires
        return cookie

    def for_cookiejar(self) -> http.cookiejar.Cookie:
        domain = ("." if self.include_subdomains else "") + self.domain
        return http.cookiejar.Cookie(
            version=0, name=self.name, value=self.value, port=None, port_specified=False,
            domain=domain, domain_specified=self.include_subdomains,
            domain_initial_dot=self.include_subdomains, path=self.path, path_specified=True,
            secure=self.secure, expires=self.expires, discard=self.expires is None,
            comment=None, comment_url=None,
            rest={"HttpOnly": ""} if self.http_only else {},
        )


def parse_cookies_txt(text: str, source: str = "cookies file") -> list[Cookie]:
    cookies: list[Cookie] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip("\r\n")
        http_only = line.startswith(HTTPONLY_PREFIX)
        if http_only:
            line = line[len(HTTPONLY_PREFIX):]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) == 6:  # some writers leave out an empty value's tab... and the value
            fields.append("")
        if len(fields) != 7:
            raise InputError(f"{source} line {number}: expected 7 tab-separated fields "
                             f"(domain, subdomains, path, secure, expires, name, value), got {len(fields)}")
        domain, subdomains, path, secure, expires, name, value = fields
        try:
            expiry = int(float(expires)) if expires.strip() else 0
        except ValueError:
            raise InputError(f"{source} line {number}: expiry {expires!r} is not a Unix time") from None
        cookies.append(Cookie(
            domain=domain.strip().lstrip("."),
            include_subdomains=subdomains.strip().upper() == "TRUE" or domain.startswith("."),
            path=path.strip() or "/",
            secure=secure.strip().upper() == "TRUE",
            expires=expiry if expiry > 0 else None,
            name=name,
            value=value,
            http_only=http_only,
        ))
    return cookies


def load_cookies_txt(path: str) -> list[Cookie]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError as error:
        raise UsageError(f"--cookies {path}: {error.strerror}") from None
    return parse_cookies_txt(text, source=path)


def cookie_jar(cookies: list[Cookie]) -> http.cookiejar.CookieJar:
    jar = http.cookiejar.CookieJar()
    for cookie in cookies:
        jar.set_cookie(cookie.for_cookiejar())
    return jar
