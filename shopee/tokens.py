"""Each shop's token pair: stored in the database, refreshed ahead of expiry, never burnt.

Shopee access tokens last 4 hours; a refresh returns a new access token *and* a new refresh
token, and the old refresh token stops working. Two replicas refreshing the same shop at once
would therefore leave one of them with a dead refresh token and, 30 days later, a shop that
must be re-authorised by hand. So refreshing is single-flight per shop across processes:

1. take the shop's lease with one conditional UPDATE (only if nobody holds it or the holder's
   lease has run out, so a crashed holder blocks nobody for long);
2. re-read the row under the lease (the previous holder may just have finished);
3. call Shopee, then store the new pair in one UPDATE that also releases the lease, before the
   new access token is handed to anyone; transient database errors on that UPDATE are retried,
   because the old refresh token is already spent and losing the new pair means the seller
   must authorise the app again;
4. everyone else polls the row until the access token changes, then uses the new one, except
   a caller refreshing *early* (its access token still works): it keeps using that token
   rather than wait for the lease holder.

If Shopee calls our refresh token invalid, the row is read again before giving up: another
process may have rotated the pair since we read it (its lease ran out under it, or a
re-authorisation landed), and then the stored pair is the answer.

``SqlTokenStore`` (SQLAlchemy Core; SQLite and PostgreSQL) and ``InMemoryTokenStore`` (the
twin for unit tests) implement the same ``TokenStore`` contract.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from orderflow.metrics import Metrics
from shopee.errors import ReauthorizationRequired, RetryableError, ShopeeError
from shopee.models import TokenGrant

log = logging.getLogger(__name__)

REFRESH_TOKEN_LIFETIME_SECONDS = 30 * 86400
# token/get's official sample returns an epoch in expire_in; a real lifetime is hours.
_EPOCH_THRESHOLD = 1_000_000_000


@dataclass(frozen=True)
class ShopToken:
    """One shop's current token pair. Times are Unix seconds.

    ``refresh_issued_at`` is when this refresh token was issued; Shopee kills it 30 days later.
    ``authorized_at`` is when the seller last authorised the app (authorisations last up to a
    year).
    """

    shop_id: int
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_issued_at: int
    authorized_at: int

    def __repr__(self) -> str:
        # Tokens are credentials; keep them out of logs and tracebacks.
        return (
            f"ShopToken(shop_id={self.shop_id}, access_expires_at={self.access_expires_at}, "
            f"refresh_issued_at={self.refresh_issued_at}, authorized_at={self.authorized_at})"
        )

    def access_expires_in(self, now: float) -> float:
        return self.access_expires_at - now

    def refresh_token_age(self, now: float) -> float:
        return now - self.refresh_issued_at

    def refresh_token_expires_in(self, now: float) -> float:
        return self.refresh_issued_at + REFRESH_TOKEN_LIFETIME_SECONDS - now

    def needs_refresh(self, now: float, margin_seconds: float) -> bool:
        """True once the access token is within ``margin_seconds`` of expiring."""
        return self.access_expires_in(now) <= margin_seconds


def access_expiry(expire_in: int, now: float) -> int:
    """When an access token from a grant expires: ``expire_in`` is a lifetime in seconds, but
    an epoch-sized value (as in Shopee's own token/get sample) is taken as the expiry time."""
    if expire_in >= _EPOCH_THRESHOLD:
        return expire_in
    return int(now) + expire_in


def token_from_grant(
    shop_id: int, grant: TokenGrant, now: float, authorized_at: int | None = None
) -> ShopToken:
    """The stored form of a fresh grant (``authorized_at`` defaults to ``now``)."""
    return ShopToken(
        shop_id=shop_id,
        access_token=grant.access_token,
        access_expires_at=access_expiry(grant.expire_in, now),
        refresh_token=grant.refresh_token,
        refresh_issued_at=int(now),
        authorized_at=int(now) if authorized_at is None else authorized_at,
    )


class TokenStore(Protocol):
    """Durable per-shop token pairs with a refresh lease. Every method is atomic."""

    def load(self, shop_id: int) -> ShopToken | None:
        """The shop's pair, or None if the shop was never authorised."""

    def load_all(self) -> list[ShopToken]:
        """Every shop's pair, by shop id."""

    def save_authorized(self, token: ShopToken) -> None:
        """Insert or replace the shop's pair after an authorisation; clears any lease."""

    def try_lease(self, shop_id: int, holder: str, now: float, until: float) -> bool:
        """Take the shop's refresh lease for ``holder`` until ``until`` if it is free or
        expired at ``now``. False if someone else holds it or the shop is unknown."""

    def release_lease(self, shop_id: int, holder: str) -> None:
        """Give the lease back if ``holder`` still has it."""

    def save_refreshed(self, token: ShopToken, used_refresh_token: str) -> bool:
        """Store a refreshed pair and clear the lease, only if the stored refresh token is
        still ``used_refresh_token``. False means a re-authorisation replaced the pair."""


metadata = sa.MetaData()

shopee_tokens = sa.Table(
    "shopee_tokens",
    metadata,
    sa.Column("shop_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("access_token", sa.Text, nullable=False),
    sa.Column("access_expires_at", sa.BigInteger, nullable=False),
    sa.Column("refresh_token", sa.Text, nullable=False),
    sa.Column("refresh_issued_at", sa.BigInteger, nullable=False),
    sa.Column("authorized_at", sa.BigInteger, nullable=False),
    sa.Column("lease_holder", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.Float, nullable=True),
)


def _row_to_token(row: sa.Row[tuple[object, ...]]) -> ShopToken:
    m = row._mapping
    return ShopToken(
        shop_id=int(m["shop_id"]),
        access_token=str(m["access_token"]),
        access_expires_at=int(m["access_expires_at"]),
        refresh_token=str(m["refresh_token"]),
        refresh_issued_at=int(m["refresh_issued_at"]),
        authorized_at=int(m["authorized_at"]),
    )


class SqlTokenStore:
    """``TokenStore`` on the ``shopee_tokens`` table (migration 0001)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def load(self, shop_id: int) -> ShopToken | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(shopee_tokens).where(shopee_tokens.c.shop_id == shop_id)
            ).first()
        return None if row is None else _row_to_token(row)

    def load_all(self) -> list[ShopToken]:
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(shopee_tokens).order_by(shopee_tokens.c.shop_id))
            return [_row_to_token(row) for row in rows]

    def save_authorized(self, token: ShopToken) -> None:
        values = {
            "shop_id": token.shop_id,
            "access_token": token.access_token,
            "access_expires_at": token.access_expires_at,
            "refresh_token": token.refresh_token,
            "refresh_issued_at": token.refresh_issued_at,
            "authorized_at": token.authorized_at,
            "lease_holder": None,
            "lease_until": None,
        }
        with self._engine.begin() as conn:
            insert = (
                postgresql.insert(shopee_tokens)
                if conn.dialect.name == "postgresql"
                else sqlite.insert(shopee_tokens)
            )
            update = {k: v for k, v in values.items() if k != "shop_id"}
            conn.execute(
                insert.values(**values).on_conflict_do_update(
                    index_elements=[shopee_tokens.c.shop_id], set_=update
                )
            )

    def try_lease(self, shop_id: int, holder: str, now: float, until: float) -> bool:
        t = shopee_tokens.c
        # One conditional UPDATE: the database's row lock makes it the arbiter between
        # threads, processes and replicas alike.
        statement = (
            sa.update(shopee_tokens)
            .where(t.shop_id == shop_id)
            .where(sa.or_(t.lease_holder.is_(None), t.lease_until <= now))
            .values(lease_holder=holder, lease_until=until)
        )
        with self._engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    def release_lease(self, shop_id: int, holder: str) -> None:
        t = shopee_tokens.c
        statement = (
            sa.update(shopee_tokens)
            .where(t.shop_id == shop_id, t.lease_holder == holder)
            .values(lease_holder=None, lease_until=None)
        )
        with self._engine.begin() as conn:
            conn.execute(statement)

    def save_refreshed(self, token: ShopToken, used_refresh_token: str) -> bool:
        t = shopee_tokens.c
        statement = (
            sa.update(shopee_tokens)
            .where(t.shop_id == token.shop_id, t.refresh_token == used_refresh_token)
            .values(
                access_token=token.access_token,
                access_expires_at=token.access_expires_at,
                refresh_token=token.refresh_token,
                refresh_issued_at=token.refresh_issued_at,
                lease_holder=None,
                lease_until=None,
            )
        )
        with self._engine.begin() as conn:
            return conn.execute(statement).rowcount == 1


@dataclass
class _Row:
    token: ShopToken
    lease_holder: str | None = None
    lease_until: float = 0.0


class InMemoryTokenStore:
    """``TokenStore`` in a dict, safe across threads of one process (tests and demos)."""

    def __init__(self) -> None:
        self._rows: dict[int, _Row] = {}
        self._lock = threading.Lock()

    def load(self, shop_id: int) -> ShopToken | None:
        with self._lock:
            row = self._rows.get(shop_id)
            return None if row is None else row.token

    def load_all(self) -> list[ShopToken]:
        with self._lock:
            return [self._rows[shop_id].token for shop_id in sorted(self._rows)]

    def save_authorized(self, token: ShopToken) -> None:
        with self._lock:
            self._rows[token.shop_id] = _Row(token)

    def try_lease(self, shop_id: int, holder: str, now: float, until: float) -> bool:
        with self._lock:
            row = self._rows.get(shop_id)
            if row is None or (row.lease_holder is not None and row.lease_until > now):
                return False
            row.lease_holder, row.lease_until = holder, until
            return True

    def release_lease(self, shop_id: int, holder: str) -> None:
        with self._lock:
            row = self._rows.get(shop_id)
            if row is not None and row.lease_holder == holder:
                row.lease_holder, row.lease_until = None, 0.0

    def save_refreshed(self, token: ShopToken, used_refresh_token: str) -> bool:
        with self._lock:
            row = self._rows.get(token.shop_id)
            if row is None or row.token.refresh_token != used_refresh_token:
                return False
            # Like the SQL store: a refresh never changes when the seller authorised.
            self._rows[token.shop_id] = _Row(replace(token, authorized_at=row.token.authorized_at))
            return True


class TokenGrantor(Protocol):
    """Shopee's token endpoints (``shopee.auth.AuthApi``), narrowed to what refresh needs."""

    def get_access_token(self, code: str, shop_id: int) -> TokenGrant: ...

    def refresh_access_token(self, refresh_token: str, shop_id: int) -> TokenGrant: ...


class ShopTokens:
    """Hands out each shop's access token, refreshing it single-flight ahead of expiry.

    ``refresh_margin_seconds``: refresh when the access token has less left than this.
    ``lease_seconds``: how long a refresher may hold the lease; must outlast one refresh call
    with its retries and the retried save (about ``save_backoff_seconds * 2**save_attempts``).
    ``wait_seconds``: how long a caller whose token is expired or rejected waits for another
    refresher before giving up with a ``RetryableError``. ``save_attempts`` and
    ``save_backoff_seconds`` bound the retries of storing a new pair (doubling delays).
    ``clock`` is Unix seconds; ``sleep`` waits between polls and save retries.
    """

    def __init__(
        self,
        store: TokenStore,
        grantor: TokenGrantor,
        metrics: Metrics,
        *,
        refresh_margin_seconds: float,
        lease_seconds: float,
        wait_seconds: float | None = None,
        poll_seconds: float = 0.2,
        save_attempts: int = 5,
        save_backoff_seconds: float = 0.2,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if save_attempts < 1 or save_backoff_seconds < 0:
            raise ValueError("save_attempts must be at least 1 and the backoff not negative")
        self.store = store
        self._grantor = grantor
        self._metrics = metrics
        self._margin = refresh_margin_seconds
        self._lease_seconds = lease_seconds
        # Waiting a full lease plus a poll covers a holder that died just after taking it.
        self._wait_seconds = lease_seconds + poll_seconds if wait_seconds is None else wait_seconds
        self._poll_seconds = poll_seconds
        self._save_attempts = save_attempts
        self._save_backoff_seconds = save_backoff_seconds
        self._clock = clock
        self._sleep = sleep
        self._holder_prefix = f"{socket.gethostname()}:{os.getpid()}"

    def authorize(self, code: str, shop_id: int) -> ShopToken:
        """Exchange the seller's authorisation code for the shop's first (or a new) pair."""
        grant = self._grantor.get_access_token(code, shop_id)
        token = token_from_grant(shop_id, grant, self._clock())
        self.store.save_authorized(token)
        self.publish(token)
        return token

    def access_token(self, shop_id: int) -> str:
        """A usable access token for ``shop_id``, refreshed first if it is about to expire.

        While the token still works, refreshing is early and never makes the caller wait: if
        another process holds the refresh lease, or the refresh fails transiently, the current
        token is returned. Only an expired token waits for the lease holder.

        ``ReauthorizationRequired`` if the shop has no stored pair or Shopee refuses its
        refresh token; ``RetryableError`` if the token is expired and another refresher holds
        the lease too long.
        """
        token = self._load(shop_id)
        now = self._clock()
        if token.needs_refresh(now, self._margin):
            still_valid = token.access_expires_in(now) > 0
            try:
                token = self._refresh(shop_id, token.access_token, wait=not still_valid)
            except RetryableError:
                # Refreshing early is a courtesy; while the old token still works, a
                # transient refresh failure must not fail the caller's request too.
                if token.access_expires_in(self._clock()) <= 0:
                    raise
        self.publish(token)
        return token.access_token

    def refresh_rejected(self, shop_id: int, rejected_access_token: str) -> str:
        """Shopee rejected ``rejected_access_token``: a fresh token, refreshing only if no one
        already replaced the rejected one."""
        token = self._refresh(shop_id, rejected_access_token)
        self.publish(token)
        return token.access_token

    def publish(self, token: ShopToken) -> None:
        """Point the shop's age gauges at ``token``; they keep ticking between calls."""
        shop = str(token.shop_id)
        clock = self._clock
        issued_at, expires_at = token.refresh_issued_at, token.access_expires_at
        self._metrics.shopee_refresh_token_age.labels(shop_id=shop).set_function(
            lambda: clock() - issued_at
        )
        self._metrics.shopee_access_token_expires_in.labels(shop_id=shop).set_function(
            lambda: expires_at - clock()
        )

    def publish_all(self) -> list[ShopToken]:
        """Publish every stored shop's gauges (at start-up, and for ``auth status``)."""
        tokens = self.store.load_all()
        for token in tokens:
            self.publish(token)
        return tokens

    def _load(self, shop_id: int) -> ShopToken:
        token = self.store.load(shop_id)
        if token is None:
            raise ReauthorizationRequired(
                f"shop {shop_id} has no stored token; authorise it with `orderflow auth url` "
                "and `orderflow auth exchange`"
            )
        return token

    def _refresh(self, shop_id: int, stale_access_token: str, *, wait: bool = True) -> ShopToken:
        """A pair whose access token is not ``stale_access_token``: someone else's fresh one,
        or ours. ``wait=False`` (an early refresh) returns the stored pair at once when the
        lease is taken and its access token has not expired."""
        deadline = self._clock() + self._wait_seconds
        holder = f"{self._holder_prefix}:{uuid.uuid4().hex}"
        while True:
            current = self._load(shop_id)
            if current.access_token != stale_access_token:
                self._count(shop_id, "joined")
                return current
            now = self._clock()
            if self.store.try_lease(shop_id, holder, now, now + self._lease_seconds):
                try:
                    return self._refresh_holding_lease(shop_id, stale_access_token)
                finally:
                    self.store.release_lease(shop_id, holder)
            if not wait and current.access_expires_in(now) > 0:
                # Someone is already refreshing; the token we have works until they finish.
                return current
            if now >= deadline:
                self._count(shop_id, "lease_timeout")
                raise RetryableError(
                    f"shop {shop_id}: another process has been refreshing the access token "
                    f"for over {self._wait_seconds:.0f}s"
                )
            self._sleep(self._poll_seconds)

    def _refresh_holding_lease(self, shop_id: int, stale_access_token: str) -> ShopToken:
        # The previous holder may have stored a new pair between our read and our lease.
        current = self._load(shop_id)
        if current.access_token != stale_access_token:
            self._count(shop_id, "joined")
            return current
        try:
            grant = self._grantor.refresh_access_token(current.refresh_token, shop_id)
        except ReauthorizationRequired:
            # "Invalid refresh_token" also answers a token another process has just spent
            # (its lease ran out while it refreshed, or the seller re-authorised): if the
            # stored pair moved on, that pair is the answer, not a re-authorisation.
            stored = self._load(shop_id)
            if (stored.refresh_token, stored.access_token) != (
                current.refresh_token,
                current.access_token,
            ):
                self._count(shop_id, "joined")
                return stored
            self._count(shop_id, "reauthorize")
            raise
        except ShopeeError:
            self._count(shop_id, "failed")
            raise
        fresh = token_from_grant(shop_id, grant, self._clock(), current.authorized_at)
        # Persist before anyone uses the new access token: the old refresh token is dead now.
        if not self._save_refreshed(fresh, used_refresh_token=current.refresh_token):
            self._count(shop_id, "superseded")
            return self._load(shop_id)
        self._count(shop_id, "ok")
        return fresh

    def _save_refreshed(self, fresh: ShopToken, used_refresh_token: str) -> bool:
        """``store.save_refreshed`` with transient database errors retried.

        The only copy of the new pair is in memory and Shopee has already spent the old
        refresh token, so giving up here means the seller must authorise the app again.
        """
        shop_id = fresh.shop_id
        attempt = 0
        while True:
            try:
                if self.store.save_refreshed(fresh, used_refresh_token=used_refresh_token):
                    return True
                if attempt == 0:
                    return False
                # A failed attempt may have committed before its error: then the row already
                # holds our pair and the compare-and-set above found it changed.
                stored = self.store.load(shop_id)
                return stored is not None and stored.refresh_token == fresh.refresh_token
            except sa_exc.SQLAlchemyError as exc:
                attempt += 1
                if not _transient_database_error(exc) or attempt >= self._save_attempts:
                    self._count(shop_id, "save_failed")
                    log.error(
                        "shop %d: could not store the refreshed token pair after %d attempt(s) "
                        "(%s); Shopee has already spent the old refresh token, so the shop may "
                        "need re-authorisation (`orderflow auth url`)",
                        shop_id,
                        attempt,
                        type(exc).__name__,
                    )
                    raise
                delay = self._save_backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "shop %d: storing the refreshed token pair failed (%s); retry %d of %d "
                    "in %.2fs",
                    shop_id,
                    type(exc).__name__,
                    attempt,
                    self._save_attempts - 1,
                    delay,
                )
                self._sleep(delay)

    def _count(self, shop_id: int, outcome: str) -> None:
        self._metrics.shopee_token_refreshes.labels(shop_id=str(shop_id), outcome=outcome).inc()


def _transient_database_error(exc: sa_exc.SQLAlchemyError) -> bool:
    """Errors the same statement may not hit a moment later: the driver's (connection lost,
    lock timeout, serialisation failure, ...) and an exhausted connection pool."""
    return isinstance(exc, sa_exc.DBAPIError | sa_exc.TimeoutError)
