-- Retention plans of the last hour, so a plan made through one replica can be read and applied
-- through any other. The body is the plan as GET /retention/plans/{id} answers it.
CREATE TABLE retention_plans (
    id         text PRIMARY KEY,
    body       text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX retention_plans_by_expiry ON retention_plans (expires_at);
