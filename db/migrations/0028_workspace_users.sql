-- 0028_workspace_users.sql - which users belong to which workspace (issue
-- 32).
--
-- users (0002) carries no workspace: a user may work in several. The CRM's
-- user_id on POST /v1/messages and /v1/chats/read was checked only to exist,
-- so a key of workspace A could name, and enumerate, the users of every
-- other tenant, and stamp A's outbound messages with them. A user now
-- counts in a workspace only while a row here says so (Blazz's Laravel app
-- keeps the same fact in its teams table); the CRM writes these rows, for
-- its own workspace only, like its other tenant data.

CREATE TABLE workspace_users (
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role          text NOT NULL DEFAULT 'agent' CHECK (role <> ''),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);

CREATE INDEX workspace_users_user_idx ON workspace_users (user_id);

ALTER TABLE workspace_users ENABLE ROW LEVEL SECURITY;
CREATE POLICY workspace_users_workspace_isolation ON workspace_users TO blazz_crm
    USING (workspace_id = blazz_current_workspace_id())
    WITH CHECK (workspace_id = blazz_current_workspace_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON workspace_users TO blazz_crm;
GRANT SELECT ON workspace_users TO blazz_ingest, blazz_chat_sync;
