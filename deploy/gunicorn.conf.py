"""gunicorn settings for auditapp: `gunicorn -c deploy/gunicorn.conf.py` (the systemd unit;
`make run` uses them too, with one worker on 127.0.0.1:5000).

Slow clients: a connection that sends its headers or body slowly holds a thread until it is
done, whatever the worker class that runs real threads. So each worker accepts a
connection only while one of its threads is free (worker_connections = threads, no
keep-alive): a worker whose threads are all held stops accepting and the others take the
new connections, instead of queueing them behind the slow ones. 2 workers x 32 threads
serve /healthz under 50 slow connections (tests/test_production.py). Beyond
workers x threads slow connections gunicorn alone stalls: in production nginx in front
buffers every request but the uploads (deploy/nginx.conf.example), so slow clients reach
gunicorn only on the upload routes, limited there per client and by timeouts.

Why gthread and not an event loop (gevent, eventlet): SQLite's busy wait, scrypt, openpyxl
and psycopg's C waits block in C code; under a single-threaded hub one of them would stall
every connection of the worker. With threads they stall only their own request.
"""

wsgi_app = "auditapp.wsgi:create()"
bind = "127.0.0.1:8000"

worker_class = "gthread"
workers = 2
threads = 32
worker_connections = threads  # accept only what a free thread can serve at once
keepalive = 0  # nginx opens a connection per request; none sits idle holding a slot

# A worker whose main loop stops answering for `timeout` s is replaced (requests run in
# threads, so a long request does not count); `graceful_timeout` lets requests finish.
timeout = 60
graceful_timeout = 30

# Request-head limits (gunicorn's defaults, stated): longer lines or more headers get a 400.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# The in-process scheduler (SCHEDULER_IN_PROCESS) must start in the worker, not the master.
preload_app = False

# No control socket (gunicorn 25.1+: a Unix socket in $HOME that can change the worker
# count at run time); systemd's signals manage the server.
control_socket_disable = True

accesslog = "-"  # to the terminal (`make run`) or the journal (systemd)
errorlog = "-"
