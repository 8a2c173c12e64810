"""Community: publish stories, browse and search them, like, bookmark, share and comment; public LoRA
styles and presets. Listings and published pages are readable without a key (only what was published);
everything else needs one."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from enchant_worker.api import pagination
from enchant_worker.api.auth import ADMIN, Principal, found, hash_key, story_rights
from enchant_worker.api.deps import ApiState, CacheDep, PrincipalDep, SettingsDep, StateDep, StoreDep
from enchant_worker.api.errors import COMMON, ApiError, Forbidden, NotFound, responses
from enchant_worker.api.serving import public_url
from enchant_worker.api.store import Row, Store
from enchant_worker.api.versions import BASIC_GENERATION
from enchant_worker.db.connection import one
from enchant_worker.sql import q

router = APIRouter(prefix="/community", tags=["community"], responses=COMMON)
FEATURE = BASIC_GENERATION

COMMENT_MAX_CHARS = 2000
COMMENTS_PER_WINDOW = 5
COMMENT_WINDOW_S = 60
DUPLICATE_COMMENT_S = 600
TAG_PATTERN = r"^[\w][\w -]{0,39}$"


class TooManyRequests(ApiError):
    """Too many requests; wait and try again."""

    status_code = 429
    headers = {"Retry-After": str(COMMENT_WINDOW_S)}


class Publish(BaseModel):
    model_config = ConfigDict(extra="forbid")
    story_id: uuid.UUID
    title: str | None = Field(None, min_length=1, max_length=200, description="default: the story's title")
    description: str | None = Field(None, max_length=5000)
    tags: list[Annotated[str, Field(pattern=TAG_PATTERN)]] = Field(default_factory=list, max_length=20)
    category: str | None = Field(None, max_length=50)


class ListingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=5000)
    tags: list[Annotated[str, Field(pattern=TAG_PATTERN)]] | None = Field(None, max_length=20)
    category: str | None = Field(None, max_length=50)
    is_featured: bool | None = Field(None, description="admins only")


class Listing(BaseModel):
    id: uuid.UUID
    story_id: uuid.UUID
    published_by: uuid.UUID | None
    title: str
    description: str | None
    tags: list[str]
    category: str | None
    is_featured: bool
    view_count: int
    like_count: int
    published_at: datetime


def _next_cursor() -> Any:
    return Field(description="pass as `cursor` for the next page; null on the last page")


CURSOR = Query(max_length=1000, description="the `next_cursor` of the previous page")


class ListingPage(BaseModel):
    items: list[Listing]
    total: int = Field(description="every listing the filters match")
    next_cursor: str | None = _next_cursor()


class PublicPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = _next_cursor()


class CommentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=COMMENT_MAX_CHARS)


class Comment(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    author: str | None
    content: str
    created_at: datetime


class CommentPage(BaseModel):
    items: list[Comment]
    next_cursor: str | None = _next_cursor()


class Interaction(BaseModel):
    story_id: uuid.UUID
    interaction_type: str
    created: bool  # False: it was already there (likes and bookmarks are once per user)
    like_count: int


def listing(row: Row) -> Listing:
    return Listing(**{k: row.get(k) for k in Listing.model_fields if k != "tags"}, tags=row.get("tags") or [])


# -- an optional caller: public pages work without a key; with one, the viewer is known -----------------

_bearer = HTTPBearer(auto_error=False)
_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def optional_principal(
    store: StoreDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_header)],
) -> Principal | None:
    key = (bearer.credentials if bearer else None) or header_key
    if not key:
        return None
    row = store.authenticate(hash_key(key))
    if row is None:
        return None
    return Principal(key_id=row["id"], name=row["name"], role=row["role"], user_id=row["user_id"])


MaybePrincipal = Annotated[Principal | None, Depends(optional_principal)]


def _listing(store: Store, listing_id: uuid.UUID) -> Row:
    return found(
        store.conn.execute(q("community_get"), {"id": listing_id}).fetchone(), "published story with that id"
    )


def _may_manage(store: Store, principal: Principal, row: Row) -> None:
    if not principal.is_admin and ADMIN not in story_rights(store, principal, row["story_id"]):
        raise Forbidden("only the story's owner (or an admin) may change or unpublish its listing")


def _invalidate(cache: Any) -> None:
    cache.community_content.invalidate("listings")  # bumps the version every cached page is keyed by


# -- publishing -----------------------------------------------------------------------------------------


@router.post(
    "/stories", response_model=Listing, status_code=status.HTTP_201_CREATED, responses=responses(403, 404)
)
def publish(
    body: Publish, response: Response, store: StoreDep, cache: CacheDep, principal: PrincipalDep
) -> Listing:
    """Publish a story (its owner or an admin); publishing again updates the listing (200)."""
    story = store.story_access(body.story_id, principal.user_id)
    if story is None:
        raise NotFound(f"no story with id {body.story_id}")
    if not principal.is_admin and ADMIN not in story_rights(store, principal, body.story_id):
        raise Forbidden("only the story's owner (or an admin) may publish it")
    title = body.title or (store.story_metadata(body.story_id) or {}).get("title")
    row = one(
        store.conn.execute(
            q("community_publish"),
            {
                "story_id": body.story_id,
                "published_by": principal.user_id,
                "title": title,
                "description": body.description,
                "tags": body.tags,
                "category": body.category,
            },
        )
    )
    if not row["created"]:
        response.status_code = status.HTTP_200_OK
    _invalidate(cache)
    return listing(row)


@router.patch("/stories/{listing_id}", response_model=Listing, responses=responses(403, 404))
def update_listing(
    listing_id: uuid.UUID, body: ListingUpdate, store: StoreDep, cache: CacheDep, principal: PrincipalDep
) -> Listing:
    """Change a listing; `is_featured` is for admins only."""
    row = _listing(store, listing_id)
    if body.is_featured is not None and not principal.is_admin:
        raise Forbidden("is_featured: only an admin may feature a story")
    _may_manage(store, principal, row)
    given = body.model_fields_set
    params: dict[str, Any] = {"id": listing_id}
    for name in ("title", "description", "tags", "category", "is_featured"):
        params[f"set_{name}"] = name in given
        params[name] = getattr(body, name)
    row = one(store.conn.execute(q("community_update"), params))
    _invalidate(cache)
    return listing(row)


@router.delete("/stories/{listing_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403, 404))
def unpublish(listing_id: uuid.UUID, store: StoreDep, cache: CacheDep, principal: PrincipalDep) -> Response:
    """Unpublish (the owner or an admin): the pages, likes, bookmarks and comments go."""
    _may_manage(store, principal, _listing(store, listing_id))
    store.conn.execute(q("community_unpublish"), {"id": listing_id})
    _invalidate(cache)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- browsing (no key needed) ---------------------------------------------------------------------------


@router.get("/stories", response_model=ListingPage, responses=responses(400))
def browse(
    state: StateDep,
    store: StoreDep,
    cache: CacheDep,
    tag: Annotated[str | None, Query(max_length=40)] = None,
    category: Annotated[str | None, Query(max_length=50)] = None,
    featured: bool | None = None,
    q_: Annotated[
        str | None, Query(alias="q", max_length=100, description="words in title or description")
    ] = None,
    sort: Literal["newest", "popular"] = "newest",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, CURSOR] = None,
) -> ListingPage:
    """Published stories, newest or most popular first; cached for 24 h (the seed's community_content),
    refreshed at once on publish, unpublish, feature and changes. Follow `next_cursor` for more."""
    filters = {"tag": tag, "category": category, "featured": featured, "q": q_, "sort": sort}
    names = ("likes", "views", "published", "id") if sort == "popular" else ("published", "id")
    secret = state.secret(store, "cursor")
    after = {
        "after_likes": None,
        "after_views": None,
        **pagination.key_position(secret, cursor, filters, names),
    }
    version = cache.community_content.version("listings")
    key = f"page:{version}:{json.dumps({**filters, 'limit': limit, 'cursor': cursor}, sort_keys=True)}"

    def sort_key(row: Row) -> list[Any]:
        tail = [row["published_at"].isoformat(), str(row["id"])]
        return [row["likes"], row["views"], *tail] if sort == "popular" else tail

    def load() -> dict[str, Any]:
        rows = store.conn.execute(q("community_list"), {**filters, **after, "limit": limit + 1}).fetchall()
        items, next_cursor = pagination.page(secret, rows, limit, filters, key=sort_key)
        return {
            "items": [listing(r).model_dump(mode="json") for r in items],
            "total": rows[0]["total"] if rows else 0,
            "next_cursor": next_cursor,
        }

    return ListingPage.model_validate(cache.community_content.get_or_load(key, load))


@router.get("/stories/{listing_id}", responses=responses(404))
def read_story(
    listing_id: uuid.UUID,
    request: Request,
    store: StoreDep,
    state: StateDep,
    settings: SettingsDep,
    principal: MaybePrincipal,
) -> dict[str, Any]:
    """A published story's page: its listing, chapters, scenes and illustrations (as public /media URLs).
    Counts a view (once per viewer and day)."""
    from enchant_worker.export.story_data import load_story

    row = _listing(store, listing_id)
    viewer = (
        str(principal.user_id)
        if principal and principal.user_id
        else hashlib.sha256(
            f"{request.client.host if request.client else ''}|"
            f"{request.headers.get('user-agent', '')}".encode()
        ).hexdigest()[:32]
    )
    if state.views.add(listing_id, viewer):
        state.views.flush(store.conn)
    data = load_story(store.conn, row["story_id"])
    chapters = [
        {
            "number": c["chapter_number"],
            "title": c["title"],
            "content": c["content"],
            "scenes": [
                {
                    "number": s["scene_number"],
                    "title": s["title"],
                    "summary": s["summary"],
                    "content": s["content"],
                    "images": [
                        {
                            "url": public_url(settings, f"/media/{i['file_path']}"),
                            "width": i["width"],
                            "height": i["height"],
                        }
                        for i in s["images"]
                        if not i["file_path"].startswith("/")
                    ],
                }
                for s in c["scenes"]
            ],
        }
        for c in data["chapters"]
    ]
    mine = (
        store.conn.execute(
            q("community_interaction_mine"), {"story_id": listing_id, "user_id": principal.user_id}
        ).fetchone()
        if principal and principal.user_id
        else None
    )
    return {
        "listing": listing(row).model_dump(mode="json"),
        "author": data["story"]["author"].get("display_name"),
        "chapters": chapters,
        "liked": bool(mine and mine["liked"]),
        "bookmarked": bool(mine and mine["bookmarked"]),
    }


@router.get("/stories/{listing_id}/comments", response_model=CommentPage, responses=responses(400, 404))
def comments(
    listing_id: uuid.UUID,
    state: StateDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, CURSOR] = None,
) -> CommentPage:
    """A published story's comments, newest first; follow `next_cursor` for more."""
    _listing(store, listing_id)
    filters = {"story_id": listing_id}
    secret = state.secret(store, "cursor")
    after = pagination.key_position(secret, cursor, filters, ("created", "id"))
    rows = store.conn.execute(
        q("community_comments"), {"story_id": listing_id, "limit": limit + 1, **after}
    ).fetchall()
    items, next_cursor = pagination.page(secret, rows, limit, filters)
    return CommentPage(items=[Comment.model_validate(r) for r in items], next_cursor=next_cursor)


# -- interactions (a key acting for a user) -----------------------------------------------------------


def _user(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise Forbidden("interactions are made by users: use a key that acts for a user")
    return principal.user_id


def _interact(
    store: Store, principal: Principal, listing_id: uuid.UUID, kind: str, content: str | None = None
) -> tuple[Row | None, int]:
    _listing(store, listing_id)
    row = store.conn.execute(
        q("community_interaction_add"),
        {"user_id": _user(principal), "story_id": listing_id, "interaction_type": kind, "content": content},
    ).fetchone()
    return row, _listing(store, listing_id)["like_count"]


for _kind, _path in (("like", "likes"), ("bookmark", "bookmarks")):

    def _add(
        listing_id: uuid.UUID, response: Response, store: StoreDep, principal: PrincipalDep, kind: str = _kind
    ) -> Interaction:
        row, likes = _interact(store, principal, listing_id, kind)
        if row is None:
            response.status_code = status.HTTP_200_OK
        return Interaction(
            story_id=listing_id, interaction_type=kind, created=row is not None, like_count=likes
        )

    def _remove(
        listing_id: uuid.UUID, store: StoreDep, principal: PrincipalDep, kind: str = _kind
    ) -> Interaction:
        _listing(store, listing_id)
        store.conn.execute(
            q("community_interaction_remove"),
            {"story_id": listing_id, "user_id": _user(principal), "interaction_type": kind},
        )
        return Interaction(
            story_id=listing_id,
            interaction_type=kind,
            created=False,
            like_count=_listing(store, listing_id)["like_count"],
        )

    router.add_api_route(
        f"/stories/{{listing_id}}/{_path}",
        _add,
        methods=["POST"],
        response_model=Interaction,
        status_code=status.HTTP_201_CREATED,
        responses=responses(403, 404),
        summary=f"{_kind.title()} a published story (once per user; again is a no-op, 200)",
    )
    router.add_api_route(
        f"/stories/{{listing_id}}/{_path}",
        _remove,
        methods=["DELETE"],
        response_model=Interaction,
        responses=responses(403, 404),
        summary=f"Take back a {_kind}",
    )


@router.post(
    "/stories/{listing_id}/shares",
    response_model=Interaction,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 404),
)
def share(listing_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Interaction:
    """Record a share."""
    _, likes = _interact(store, principal, listing_id, "share")
    return Interaction(story_id=listing_id, interaction_type="share", created=True, like_count=likes)


@router.post(
    "/stories/{listing_id}/comments",
    response_model=Comment,
    status_code=status.HTTP_201_CREATED,
    responses=responses(403, 404, 429),
)
def comment(listing_id: uuid.UUID, body: CommentCreate, store: StoreDep, principal: PrincipalDep) -> Comment:
    """Comment (at most 2,000 characters; 5 a minute per user; the same text twice in 10 minutes is refused)."""
    _listing(store, listing_id)
    content = body.content.strip()
    pressure = one(
        store.conn.execute(
            q("community_comment_pressure"),
            {
                "user_id": _user(principal),
                "story_id": listing_id,
                "content": content,
                "window_s": COMMENT_WINDOW_S,
                "duplicate_s": DUPLICATE_COMMENT_S,
            },
        )
    )
    if pressure["duplicate"]:
        raise TooManyRequests("you already posted this comment on this story; say something new")
    if pressure["recent"] >= COMMENTS_PER_WINDOW:
        raise TooManyRequests(f"at most {COMMENTS_PER_WINDOW} comments a minute; try again in a minute")
    row, _ = _interact(store, principal, listing_id, "comment", content)
    assert row is not None  # a comment is always added (a like or share may exist already)
    name = store.conn.execute("SELECT display_name FROM users WHERE id = %s", (row["user_id"],)).fetchone()
    return Comment(
        id=row["id"],
        user_id=row["user_id"],
        author=name["display_name"] if name else None,
        content=row["content"],
        created_at=row["created_at"],
    )


@router.delete(
    "/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT, responses=responses(403, 404)
)
def delete_comment(comment_id: uuid.UUID, store: StoreDep, principal: PrincipalDep) -> Response:
    """Delete a comment: its author or an admin."""
    row = found(
        store.conn.execute(q("community_comment_get"), {"id": comment_id}).fetchone(), "comment with that id"
    )
    if not principal.is_admin and row["user_id"] != principal.user_id:
        raise Forbidden("only the comment's author (or an admin) may delete it")
    store.conn.execute(q("community_comment_delete"), {"id": comment_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- public styles and presets --------------------------------------------------------------------------


def _public_page(
    state: ApiState, store: Store, query: str, count: str, limit: int, cursor: str | None
) -> PublicPage:
    """Public styles or presets, most used first, paged by (uses, created_at, id)."""
    secret = state.secret(store, "cursor")
    filters = {"list": query}
    after = pagination.key_position(secret, cursor, filters, ("count", "created", "id"))
    rows = store.conn.execute(q(query), {"limit": limit + 1, **after}).fetchall()
    items, next_cursor = pagination.page(
        secret, rows, limit, filters, key=lambda r: [r[count], r["created_at"].isoformat(), str(r["id"])]
    )
    return PublicPage(items=items, next_cursor=next_cursor)


@router.get("/loras", response_model=PublicPage, responses=responses(400))
def public_loras(
    state: StateDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, CURSOR] = None,
) -> PublicPage:
    """Public, ready LoRA styles, most downloaded first (no key needed)."""
    return _public_page(state, store, "community_public_loras", "download_count", limit, cursor)


@router.get("/presets", response_model=PublicPage, responses=responses(400))
def public_presets(
    state: StateDep,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, CURSOR] = None,
) -> PublicPage:
    """Public generation presets, most used first (no key needed)."""
    return _public_page(state, store, "community_public_presets", "usage_count", limit, cursor)
