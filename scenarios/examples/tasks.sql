-- A task tracker's schema, as a team would bring it: pgdrill drills it as is.
-- Tenants are accounts (keyed by their own id); most tables hold account_id; comments and
-- task_labels belong to an account only through their foreign keys; plans is global reference
-- data. It has an identity column, a serial column, an enum, a domain, jsonb, arrays, a
-- self-referencing tree (subtasks) and a cycle (an account's owner is one of its users).

CREATE TYPE task_state AS ENUM ('todo', 'doing', 'review', 'done');
CREATE DOMAIN priority AS smallint CHECK (VALUE BETWEEN 1 AND 5);

CREATE TABLE plans (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    seats       integer NOT NULL CHECK (seats > 0),
    monthly_usd numeric(8,2) NOT NULL
);

CREATE TABLE accounts (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    plan          text NOT NULL REFERENCES plans (code),
    owner_user_id bigint,
    settings      jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);

CREATE TABLE users (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    email      text NOT NULL UNIQUE,
    full_name  text NOT NULL,
    last_ip    inet,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);
CREATE INDEX users_account_id_idx ON users (account_id);
ALTER TABLE accounts ADD CONSTRAINT accounts_owner_fkey
    FOREIGN KEY (owner_user_id) REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE projects (
    account_id bigint NOT NULL REFERENCES accounts (id),
    number     integer NOT NULL,
    title      text NOT NULL,
    lead_id    bigint REFERENCES users (id),
    PRIMARY KEY (account_id, number)
);

CREATE TABLE tasks (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL,
    project     integer NOT NULL,
    parent_id   bigint REFERENCES tasks (id),
    title       text NOT NULL,
    description text,
    state       task_state NOT NULL DEFAULT 'todo',
    priority    priority,
    tags        text[] NOT NULL DEFAULT '{}',
    due_on      date,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    CHECK (updated_at >= created_at),
    FOREIGN KEY (account_id, project) REFERENCES projects (account_id, number)
);
CREATE INDEX tasks_account_project_idx ON tasks (account_id, project);
CREATE INDEX tasks_parent_idx ON tasks (parent_id);

CREATE TABLE comments (
    id        uuid PRIMARY KEY,
    task_id   bigint NOT NULL REFERENCES tasks (id),
    author_id bigint NOT NULL REFERENCES users (id),
    body      text NOT NULL,
    posted_at timestamptz NOT NULL
);
CREATE INDEX comments_task_idx ON comments (task_id);

CREATE TABLE labels (
    account_id bigint NOT NULL REFERENCES accounts (id),
    name       text NOT NULL,
    color      text NOT NULL CHECK (color IN ('red', 'green', 'blue', 'grey')),
    PRIMARY KEY (account_id, name)
);

CREATE TABLE task_labels (
    task_id    bigint NOT NULL REFERENCES tasks (id),
    account_id bigint NOT NULL,
    label      text NOT NULL,
    PRIMARY KEY (task_id, label),
    FOREIGN KEY (account_id, label) REFERENCES labels (account_id, name)
);
