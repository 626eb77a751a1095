"""``qc tokens``: create, list and revoke bearer tokens (the secret is shown once)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path

import click
from sqlalchemy import select

from service.core.auth import Role, create_token, revoke_token
from service.settings import Settings
from service.storage.orm import AccessToken

from .base import cli
from .db import cli_actor, cli_errors, migrated_context

__all__ = ["sign_in_url", "write_qr"]


def _lan_address() -> str:
    """This machine's address on the local network (no packet is sent), or 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def sign_in_url(token: str, *, base_url: str | None = None, settings: Settings | None = None) -> str:
    """The technician app's sign-in link: ``http://HOST:PORT/app/#token=<token>``.

    The token sits in the fragment, which browsers never send to a server or log.
    """
    if base_url is None:
        settings = settings or Settings()
        host = settings.host if settings.host not in ("127.0.0.1", "0.0.0.0", "localhost") else _lan_address()
        base_url = f"http://{host}:{settings.port}"
    return f"{base_url.rstrip('/')}/app/#token={token}"


def write_qr(url: str, png: Path, *, caption: Sequence[str] = ()) -> str:
    """Write ``url`` as a QR code PNG with ``caption`` printed under it (who, which node, which server: so a
    printed card can be handed to the right person); return the code as terminal text. The caption is also
    kept in the PNG's text chunks (``Title``, ``Description``)."""
    import io  # noqa: PLC0415

    import qrcode  # noqa: PLC0415
    from PIL import Image, ImageDraw, ImageFont, PngImagePlugin  # noqa: PLC0415

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)  # ISO/IEC 18004 quiet zone
    qr.add_data(url)
    qr.make(fit=True)
    code = qr.make_image().get_image().convert("L")
    font = ImageFont.load_default(size=22)
    line_h, margin = 30, 24
    width = max(code.width, 480)
    card = Image.new("L", (width, code.height + margin + line_h * len(caption) + (margin if caption else 0)), 255)
    card.paste(code, ((width - code.width) // 2, 0))
    draw = ImageDraw.Draw(card)
    for i, line in enumerate(caption):
        draw.text((margin, code.height + i * line_h), line, fill=0, font=font)
    info = PngImagePlugin.PngInfo()
    if caption:
        info.add_text("Title", caption[0])
        info.add_text("Description", "\n".join(caption))
    png.parent.mkdir(parents=True, exist_ok=True)
    card.save(str(png), pnginfo=info)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


@cli.group("tokens")
def tokens() -> None:
    """Bearer tokens: technician (bound to a node), manager, auditor, admin.

    Only a hash of each token is stored; the secret is printed once at creation.
    """


@tokens.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="What the token may do.")
@click.option("--node", default=None, help="The node a technician token belongs to (required for technician).")
@click.option("--name", default="", help="Who holds it, e.g. 'Amina (night shift)'; shown in the audit log.")
@click.option("--qr", "qr_png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a QR code PNG of the sign-in link (and print it in the terminal).")
@click.option("--url", "base_url", default=None,
              help="Server address phones use, e.g. http://192.168.1.20:8000 [default: this machine's LAN "
                   "address and KIPIMO_PORT].")
@click.pass_obj
def tokens_create(settings: Settings, role: str, node: str | None, name: str, qr_png: Path | None,
                  base_url: str | None) -> None:
    """Create a token and print it once (store it now; it cannot be shown again)."""
    with migrated_context(settings) as ctx, cli_errors(), ctx.db.write_session() as session:
        secret, row = create_token(session, role=role, node=node, name=name, actor=cli_actor(), now=ctx.now())
        token_id, token_name = row.id, row.name
    click.echo(secret)
    click.echo(f"token {token_id} ({role}{' @ ' + node if node else ''}, {token_name}) created by {cli_actor()}; "
               "it is shown only this once", err=True)
    if qr_png is not None:
        url = sign_in_url(secret, base_url=base_url, settings=settings)
        server = url.split("/app/#", 1)[0]
        caption = [f"Kipimo sign-in: {token_name or role}", f"{role}" + (f" at node {node}" if node else ""),
                   f"server {server}", "Keep it safe: this card signs in as this person."]
        click.echo(write_qr(url, qr_png, caption=caption), err=True)
        click.echo(f"sign-in link: {url}\nQR code written to {qr_png}", err=True)


@tokens.command("list")
@click.pass_obj
def tokens_list(settings: Settings) -> None:
    """List tokens (id, role, node, name, state); secrets are never shown."""
    with migrated_context(settings) as ctx, ctx.db.session() as session:
        for row in session.scalars(select(AccessToken).order_by(AccessToken.id)):
            state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
            click.echo(f"{row.id}\t{row.role}\t{row.node.name if row.node else '-'}\t{row.name}\t{state}")


@tokens.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def tokens_revoke(settings: Settings, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `qc tokens list`); it stops working at once."""
    with migrated_context(settings) as ctx, cli_errors(), ctx.db.write_session() as session:
        revoke_token(session, token_id=token_id, actor=cli_actor(), now=ctx.now())
    click.echo(f"token {token_id} revoked by {cli_actor()}")
