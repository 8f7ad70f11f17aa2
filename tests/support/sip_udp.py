"""A bare SIP peer over UDP for tests of the SIP front: it says exactly what a test writes.

A node (its INVITEs, ACKs and BYEs) or a phone (its REGISTER and its answers) in
a few lines each, so a test can put two INVITEs to one phone within a millisecond
of each other, which a full SIP stack would not let it do on purpose.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class SipMessage:
    """One SIP message: the first line, headers (in order, names as written), body."""

    first: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""

    @classmethod
    def parse(cls, data: bytes) -> SipMessage:
        head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        return cls(lines[0], [(name, value) for name, value in headers], body)  # type: ignore[misc]

    def header(self, name: str) -> str:
        return next((v for n, v in self.headers if n.lower() == name.lower()), "")

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    @property
    def status(self) -> int | None:
        """A reply's status code; None for a request."""
        parts = self.first.split(" ", 2)
        return int(parts[1]) if self.first.startswith("SIP/2.0") else None

    @property
    def method(self) -> str:
        return self.header("CSeq").split(" ")[-1]


def token() -> str:
    return uuid.uuid4().hex[:12]


class SipPeer:
    """A UDP socket on (address, port) that writes SIP to one front and reads its answers."""

    def __init__(self, address: str, front: tuple[str, int], port: int = 5060) -> None:
        self.address, self.port, self.front = address, port, front
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.seen: list[SipMessage] = []

    def close(self) -> None:
        self.sock.close()

    def send(self, text: str) -> None:
        self.sock.sendto(text.replace("\n", "\r\n").encode(), self.front)

    def via(self) -> str:
        return f"SIP/2.0/UDP {self.address}:{self.port};branch=z9hG4bK-{token()};rport"

    def wait_for(self, wanted, timeout: float = 10.0) -> SipMessage:  # type: ignore[no-untyped-def]
        """The first message for which wanted(message) holds; the front's probes are answered."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            message = SipMessage.parse(data)
            self.seen.append(message)
            if message.first.startswith("OPTIONS "):
                self.reply(message, 200, "OK")
                continue
            if wanted(message):
                return message
        raise TimeoutError(f"no such SIP message at {self.address} within {timeout} s")

    def reply(self, request: SipMessage, code: int, reason: str, to_tag: str = "") -> None:
        """Answer a request the way a phone does (the Vias, From, To with a tag, Call-ID, CSeq)."""
        to = request.header("To")
        if to_tag and ";tag=" not in to:
            to = f"{to};tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {via}" for via in request.all("Via")]
        lines += [f"Record-Route: {rr}" for rr in request.all("Record-Route")]
        lines += [
            f"From: {request.header('From')}",
            f"To: {to}",
            f"Call-ID: {request.header('Call-ID')}",
            f"CSeq: {request.header('CSeq')}",
            f"Contact: <sip:{self.address}:{self.port}>",
            "Content-Length: 0",
            "",
            "",
        ]
        self.send("\n".join(lines))

    def register(
        self,
        user: str,
        timeout: float = 10.0,
        password: str | None = None,
        auth_user: str | None = None,
    ) -> SipMessage:
        """REGISTER user; with a password, answer the front's digest challenge (RFC 2617)
        as `auth_user` (the user itself unless given)."""
        call_id, tag = token(), token()
        reply = self._register(user, call_id, tag, 1, None, timeout)
        if reply.status == 401 and password is not None:
            challenge = reply.header("WWW-Authenticate")
            authorization = digest(challenge, auth_user or user, password, self.front[0])
            reply = self._register(user, call_id, tag, 2, authorization, timeout)
        return reply

    def _register(
        self,
        user: str,
        call_id: str,
        tag: str,
        cseq: int,
        authorization: str | None,
        timeout: float,
    ) -> SipMessage:
        host = self.front[0]
        self.send(
            f"REGISTER sip:{host} SIP/2.0\n"
            f"Via: {self.via()}\n"
            "Max-Forwards: 70\n"
            f"From: <sip:{user}@{host}>;tag={tag}\n"
            f"To: <sip:{user}@{host}>\n"
            f"Call-ID: {call_id}\n"
            f"CSeq: {cseq} REGISTER\n"
            f"Contact: <sip:{user}@{self.address}:{self.port}>\n"
            + (f"Authorization: {authorization}\n" if authorization else "")
            + "Expires: 600\n"
            "Content-Length: 0\n\n"
        )
        return self.wait_for(
            lambda m: m.method == "REGISTER" and m.status is not None and m.status != 100, timeout
        )

    def invite(self, user: str, call_id: str) -> str:
        """Send an INVITE for user@front; returns the From tag (for the ACK and BYE)."""
        host, port = self.front
        tag = token()
        self.send(
            f"INVITE sip:{user}@{host}:{port} SIP/2.0\n"
            f"Via: {self.via()}\n"
            "Max-Forwards: 70\n"
            f"From: <sip:12345@{self.address}>;tag={tag}\n"
            f"To: <sip:{user}@{host}>\n"
            f"Call-ID: {call_id}\n"
            "CSeq: 1 INVITE\n"
            f"Contact: <sip:12345@{self.address}:{self.port}>\n"
            "Content-Length: 0\n\n"
        )
        return tag

    def ack_failure(self, invite_reply: SipMessage) -> None:
        """ACK a final failure hop by hop (same branch as the INVITE)."""
        self._in_dialog("ACK", invite_reply, route=False, cseq=1, same_branch=True)

    def ack(self, ok: SipMessage) -> None:
        """ACK a 200 along its Record-Route."""
        self._in_dialog("ACK", ok, route=True, cseq=1)

    def bye(self, ok: SipMessage) -> None:
        self._in_dialog("BYE", ok, route=True, cseq=2)

    def _in_dialog(
        self, method: str, reply: SipMessage, route: bool, cseq: int, same_branch: bool = False
    ) -> None:
        target = reply.header("Contact").strip("<>") if route else ""
        uri = target or f"sip:{reply.header('To').split('sip:', 1)[1].split('>', 1)[0]}"
        via = reply.all("Via")[0] if same_branch else self.via()
        lines = [f"{method} {uri} SIP/2.0", f"Via: {via}", "Max-Forwards: 70"]
        if route:
            lines += [f"Route: {rr}" for rr in reversed(reply.all("Record-Route"))]
        lines += [
            f"From: {reply.header('From')}",
            f"To: {reply.header('To')}",
            f"Call-ID: {reply.header('Call-ID')}",
            f"CSeq: {cseq} {method}",
            "Content-Length: 0",
            "",
            "",
        ]
        self.send("\n".join(lines))


def digest(challenge: str, user: str, password: str, host: str) -> str:
    """The Authorization header answering a `Digest realm=…, nonce=…[, qop=auth]` challenge."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge.split(" ", 1)[1]))
    realm, nonce, uri = fields["realm"], fields["nonce"], f"sip:{host}"
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"REGISTER:{uri}")
    header = f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if "auth" in fields.get("qop", "").split(","):
        cnonce, count = token(), "00000001"
        response = md5(f"{ha1}:{nonce}:{count}:{cnonce}:auth:{ha2}")
        header += f', qop=auth, nc={count}, cnonce="{cnonce}"'
    else:
        response = md5(f"{ha1}:{nonce}:{ha2}")
    header += f', response="{response}", algorithm=MD5'
    if "opaque" in fields:
        header += f', opaque="{fields["opaque"]}"'
    return header


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # SIP digest is MD5 by its RFC
