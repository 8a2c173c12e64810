-- Options that AUTOMATIC1111-compatible clients set with POST /sdapi/v1/options (issue 13): today the
-- default checkpoint. One row per caller: a user, or an admin key (`principal` is 'user:<id>' or
-- 'key:<id>'), so one user's choice never changes another's images.
CREATE TABLE api_client_options (
    principal TEXT PRIMARY KEY,
    options JSONB NOT NULL DEFAULT '{}'::JSONB,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
