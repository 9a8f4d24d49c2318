# Copy to instance/config.py and adjust. Values here override the defaults;
# AUDITAPP_* environment variables override these.
SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105 (an example)
# DATABASE_URL = "postgresql+psycopg://auditapp@127.0.0.1:5432/auditapp"
# TIMEZONE = "Asia/Tokyo"
# FISCAL_YEAR_START_MONTH = 4
# DEFAULT_LANGUAGE = "ja"
# SESSION_COOKIE_SECURE = True   # when served over HTTPS
