"""One DHCP lease: acquired and then kept by a thread of its own.

The thread holds nothing open between steps: every acquire, renew, release
and link check opens its sockets inside the container's netns (by path) and
closes them again, so a lease never pins a namespace the runtime deleted, and
a netns that is gone is the same as an interface that is gone: the lease
ends silently (no RELEASE can be sent from a namespace that does not exist).

Timing is the reference's (plugins.md 4.3): acquire and renew retry with 4
fast tries about 2 s apart, then a backoff from 4 s doubling up to
`resend_max`, each within `resend_timeout`; Bound -> Renewing at T1 ->
Rebinding at T2 -> interface down and end at expiry. Unlike the reference,
the thread never blocks anybody: `check()` only wakes it, `stop()` ends any
wait at once and then sends the RELEASE, and `finished` tells the daemon a
loop has ended so that the next Allocate starts a new one.
"""

from __future__ import annotations

import random
import threading
import time

from pycni import faultpoint
from pycni.kernel.netlink import LinkNotFound, RtNetlink
from pycni.kernel.netns import NetnsNotFound, enter
from pycni.plugins.ipam.dhcp import packet as pk
from pycni.plugins.ipam.dhcp.client import Client, Nak, Stopped, Waker
from pycni.plugins.pkg.unixdaemon import log

RESEND_DELAY0 = 4.0
RESEND_FAST_DELAY = 2.0
RESEND_FAST_MAX = 4
LINK_CHECK_DELAY0 = 1.0
LINK_CHECK_DELAY_MAX = 10.0

BOUND, RENEWING, REBINDING = "bound", "renewing", "rebinding"


class NoMoreTries(Exception):
    """The time budget (`-resendtimeout`) ran out; the text keeps the
    reference's "no more tries" and adds the last failure."""


class LinkGone(Exception):
    """The interface (or its netns) no longer exists."""


class Settings:
    """The daemon's client flags."""

    __slots__ = ("broadcast", "resend_max", "resend_timeout", "timeout")

    def __init__(
        self,
        timeout: float = 10.0,
        resend_max: float = 62.0,
        resend_timeout: float = 208.0,
        broadcast: bool = False,
    ) -> None:
        self.timeout = timeout
        self.resend_max = resend_max
        self.resend_timeout = resend_timeout
        self.broadcast = broadcast


def jitter(span: float) -> float:
    return span * (2.0 * random.random() - 1.0)


class Lease:
    """A lease of `client_id` on `ifname` in the netns at `netns`."""

    def __init__(
        self,
        client_id: str,
        netns: str,
        ifname: str,
        options: list[tuple[int, bytes]],
        settings: Settings,
    ) -> None:
        self.client_id = client_id
        self.netns = netns
        self.ifname = ifname
        self.options = options
        self.settings = settings
        self.cid = pk.client_id_option(client_id)
        self.waker = Waker()
        self.ack: pk.Packet | None = None
        self.mac = b""
        self.server_mac = b""
        self.renewal_time = self.rebinding_time = self.expire_time = 0.0
        self.error: BaseException | None = None
        self.finished = False
        self.release_on_stop = True
        self._brought_up = False
        self._acquired = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"dhcp-lease {client_id}", daemon=True
        )

    # --- the daemon's side ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def wait_acquired(self) -> pk.Packet:
        """Block until the first ACK (returned) or failure (raised)."""
        self._acquired.wait()
        if self.error is not None:
            raise self.error
        assert self.ack is not None
        return self.ack

    def check(self) -> None:
        """Wake the loop (the reference's Check), never blocking."""
        self.waker.poke()

    def stop(self, timeout: float | None = None, release: bool = True) -> None:
        """End the loop; a bound lease is released first (unless `release`
        is false). Waits for the thread at most `timeout` seconds (None: the
        client timeout + 5 s)."""
        self.release_on_stop = release
        self.waker.stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.settings.timeout + 5.0 if timeout is None else timeout)

    def link_exists(self) -> bool:
        """One quick look (from the caller's thread) for the interface."""
        try:
            with RtNetlink(self.netns) as nl:
                return nl.link_find(self.ifname) is not None
        except (NetnsNotFound, OSError):
            return False

    # --- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            try:
                self._prepare_link()
                self._acquire()
            except BaseException as err:
                self.error = err
                if self._brought_up:  # a failed ADD leaves the link as it found it
                    self._down()
                return
            finally:
                self._acquired.set()
            log(f"{self.client_id}: lease acquired, expiration in {self._left():.0f}s")
            self._maintain()
        except Stopped:
            pass
        except BaseException as err:  # a bug must not pass silently
            log(f"{self.client_id}: lease maintenance failed: {err!r}")
        finally:
            self.finished = True
            self.waker.close()

    def _prepare_link(self) -> None:
        """Look the interface up and bring it up before the first DISCOVER
        (the reference sends one into a down link first, losing 2-3 s)."""
        try:
            with RtNetlink(self.netns) as nl:
                link = nl.link_get(self.ifname)
                if not link.up:
                    faultpoint.step("dhcp.lease.link_up")
                    nl.link_set(link, up=True)
                    self._brought_up = True
        except LinkNotFound:
            raise LinkGone(f'error looking up "{self.ifname}": Link not found') from None
        except NetnsNotFound as err:
            raise LinkGone(f'error looking up "{self.ifname}": {err.strerror}') from None
        self.mac = bytes.fromhex(link.mac.replace(":", "")) if link.mac else b"\0" * 6

    def _client(self) -> Client:
        with enter(self.netns):
            return Client(
                self.ifname,
                self.mac,
                self.settings.timeout,
                self.waker,
                broadcast=self.settings.broadcast,
            )

    def _retry(self, attempt, until: float, final: tuple = ()) -> pk.Packet:
        """Call attempt(deadline) until it returns, with the reference's
        backoff, all before `until`; NoMoreTries after. Exceptions of the
        types in `final` end the tries at once."""
        delay, fast = RESEND_DELAY0, RESEND_FAST_MAX
        while True:
            try:
                return attempt(until)
            except (Stopped, LinkGone, *final):
                raise
            except Exception as err:
                last = err
                log(f"{self.client_id}: {err}")
            if fast:
                pause = RESEND_FAST_DELAY + jitter(1.0)
                fast -= 1
            else:
                pause = delay + jitter(1.0)
                if delay < self.settings.resend_max:
                    delay *= 2
            if time.monotonic() + pause >= until:
                self.waker.sleep(until - time.monotonic())
                raise NoMoreTries(f"no more tries: {last}")
            self.waker.sleep(pause)

    def _acquire(self) -> None:
        until = time.monotonic() + self.settings.resend_timeout
        self._acquire_until(until)

    def _acquire_until(self, until: float) -> None:
        def attempt(deadline: float) -> pk.Packet:
            self._require_link()
            with self._client() as c:
                faultpoint.step("dhcp.lease.discover")
                ack = c.request(self.cid, self.options, deadline)[1]
                self.server_mac = c.reply_mac
                return ack

        self._commit(self._retry(attempt, until))

    def _renew(self, until: float) -> None:
        def attempt(deadline: float) -> pk.Packet:
            self._require_link()
            assert self.ack is not None
            with self._client() as c:
                faultpoint.step("dhcp.lease.renew")
                ack = c.renew(self.ack, self.cid, self.options, deadline)
                self.server_mac = c.reply_mac
                return ack

        # a NAK to a renewal: the address is gone, rebind at once (RFC 2131 4.4.5)
        self._commit(self._retry(attempt, until, (Nak,)))

    def _commit(self, ack: pk.Packet) -> None:
        t1, t2, lease = pk.timers(ack)
        now = time.monotonic()
        with self._lock:
            self.ack = ack
            self.renewal_time = now + t1
            self.rebinding_time = now + t2
            self.expire_time = now + lease

    def _left(self) -> float:
        return self.expire_time - time.monotonic()

    def _require_link(self) -> None:
        if not self._link_present():
            raise LinkGone(f'error looking up "{self.ifname}": Link not found')

    def _link_present(self) -> bool:
        """The reference's checkLinkExistsWithBackoff: a missing link or
        netns is an answer; other failures are retried (1 s doubling to
        10 s) within the resend budget, then taken as "gone"."""
        delay = LINK_CHECK_DELAY0
        until = time.monotonic() + self.settings.resend_timeout
        while True:
            try:
                with RtNetlink(self.netns) as nl:
                    return nl.link_find(self.ifname) is not None
            except NetnsNotFound:
                return False
            except OSError as err:
                log(f"{self.client_id}: checking {self.ifname}: {err}")
            if time.monotonic() + delay > until:
                return False
            self.waker.sleep(delay)
            delay = min(delay * 2, LINK_CHECK_DELAY_MAX)

    def _maintain(self) -> None:
        try:
            self._loop()
        except Stopped:
            if self.release_on_stop:
                self._release()

    def _loop(self) -> None:
        state = BOUND
        while True:
            if not self._link_present():
                log(f"{self.client_id}: interface {self.ifname} no longer exists, lease ends")
                return
            sleep = 0.0
            try:
                if state == BOUND:
                    sleep = self.renewal_time - time.monotonic()
                    if sleep <= 0:
                        log(f"{self.client_id}: renewing lease")
                        state = RENEWING
                        continue
                elif state == RENEWING:
                    state = self._renewing()
                else:
                    state = self._rebinding()
                    if not state:
                        return
            except LinkGone:
                continue  # the check at the top ends the loop
            self.waker.sleep(sleep)

    def _renewing(self) -> str:
        try:
            self._renew(self.rebinding_time)
        except Nak as err:
            log(f"{self.client_id}: {err}; rebinding")
            return REBINDING
        except NoMoreTries as err:
            log(f"{self.client_id}: {err}")
            if time.monotonic() >= self.rebinding_time:
                log(f"{self.client_id}: renewal time expired, rebinding")
                return REBINDING
            return RENEWING
        log(f"{self.client_id}: lease renewed, expiration in {self._left():.0f}s")
        return BOUND

    def _rebinding(self) -> str:
        """A new DISCOVER-based acquisition; "" once the lease has expired
        (the interface is then set down, as the reference does)."""
        try:
            self._acquire_until(
                min(self.expire_time, time.monotonic() + self.settings.resend_timeout)
            )
        except (NoMoreTries, Nak) as err:
            log(f"{self.client_id}: {err}")
            if time.monotonic() >= self.expire_time:
                log(f"{self.client_id}: lease expired, bringing interface DOWN")
                self._down()
                return ""
            return REBINDING
        log(f"{self.client_id}: lease rebound, expiration in {self._left():.0f}s")
        return BOUND

    def _down(self) -> None:
        try:
            with RtNetlink(self.netns) as nl:
                faultpoint.step("dhcp.lease.link_down")
                nl.link_set(nl.link_get(self.ifname), up=False)
        except OSError as err:
            log(f"{self.client_id}: failed to bring {self.ifname} DOWN: {err}")

    def _release(self) -> None:
        """DHCPRELEASE for the bound address, if the interface is still there."""
        if self.ack is None:
            return
        log(f"{self.client_id}: releasing lease")
        try:
            with self._client() as c:
                faultpoint.step("dhcp.lease.release")
                c.release(self.ack, self.cid, self.server_mac)
        except OSError as err:
            log(f"{self.client_id}: failed to send DHCPRELEASE: {err}")
