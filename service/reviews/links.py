"""The e-mailed review link: a token signed for one (campaign, reviewer), and the CSRF token its page carries.

itsdangerous with a salt of its own (no other signed value of ours verifies as a link); the key lives in
app_secrets, the same for every replica. The link has no expiry of its own: the page reads the campaign's due
instant live, so an extended deadline extends every link and a closed campaign shows "closed".
"""

import hashlib
import hmac

from itsdangerous import BadSignature, URLSafeSerializer

LINK_SALT = "gatehouse.reviews.link"
CSRF_SALT = b"gatehouse.reviews.csrf"
SECRET_NAME = "reviews_link"


class LinkRefused(Exception):
    """The token is not one we signed for a review page."""


def make(secret: bytes, campaign_id: str, reviewer_id: str) -> str:
    """The token for `reviewer_id`'s page in `campaign_id`."""
    return URLSafeSerializer(secret, salt=LINK_SALT).dumps({"c": campaign_id, "r": reviewer_id})


def read(secret: bytes, token: str) -> tuple[str, str]:
    """(campaign id, reviewer id) the token was signed for; LinkRefused if it is forged or altered."""
    try:
        value = URLSafeSerializer(secret, salt=LINK_SALT).loads(token)
    except BadSignature:
        raise LinkRefused("this review link is not valid: it was altered or not issued by Gatehouse") from None
    if not isinstance(value, dict) or not isinstance(value.get("c"), str) or not isinstance(value.get("r"), str):
        raise LinkRefused("this review link is not valid")
    return value["c"], value["r"]


def csrf(secret: bytes, token: str) -> str:
    """The CSRF token of the page behind `token`: only someone who has the page can post its forms."""
    return hmac.new(secret, CSRF_SALT + token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, token: str, given: str) -> bool:
    return hmac.compare_digest(csrf(secret, token), given or "")
