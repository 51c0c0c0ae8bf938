-- wrk script: POST /increment {"value":1}, the original's request.
wrk.method = "POST"
wrk.body = '{"value":1}'
wrk.headers["Content-Type"] = "application/json"
