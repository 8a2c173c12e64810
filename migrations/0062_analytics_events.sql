-- Analytics events (POST /v1/events): the per-user rate limit counts a user's events of the last minute,
-- the roll-up and the expiry walk them by time.
CREATE INDEX idx_analytics_events_user_time ON user_analytics_events (user_id, created_at);
CREATE INDEX idx_analytics_events_time ON user_analytics_events (created_at);

-- Each reader's latest rating (1-5) of an image, kept after the raw events expire, so that
-- images.user_rating (their mean) stays right however long ago the ratings were given. No foreign key to
-- images: it is partitioned by created_at, so its key is (id, created_at).
CREATE TABLE image_ratings (
    image_id UUID NOT NULL,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rating SMALLINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    rated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (image_id, user_id)
);
