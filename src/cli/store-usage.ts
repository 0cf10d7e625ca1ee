/** The store options' help, apart from the store code so that `certkeeper --help` loads nothing else. */
const ENCRYPTION_KEY_ENV = 'CERTKEEPER_ENCRYPTION_KEY';

export const STORE_USAGE = `Store options (default: $CERTKEEPER_STORE, else $CERTKEEPER_DIR, else ./.certkeeper):
  --store <spec>                 file:<dir> or <dir>, redis://… or rediss://…, postgres://…
                                 (prefer $CERTKEEPER_STORE for URLs with a password)
  --redis-prefix <prefix>        RedisStore prefix (default certkeeper; $CERTKEEPER_REDIS_PREFIX)
  --pg-table <name>              PostgresStore table (default certkeeper; $CERTKEEPER_PG_TABLE)
  --pg-schema <name>             PostgresStore schema (default public; $CERTKEEPER_PG_SCHEMA)
  --encryption-key-file <file>   encryption keys, as in $${ENCRYPTION_KEY_ENV} (default: that variable)
`;
