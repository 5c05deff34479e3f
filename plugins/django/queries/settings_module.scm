; Where DJANGO_SETTINGS_MODULE gets its value in manage.py, wsgi.py and asgi.py:
; `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")` and
; `os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"`. The Rust side checks that @key is
; that variable and @environ an `environ`.
(call
  function: (attribute
    object: (_) @environ
    attribute: (identifier) @method)
  arguments: (argument_list
    .
    (_) @key
    .
    (_) @value)
  (#eq? @method "setdefault"))

(assignment
  left: (subscript
    value: (_) @environ
    subscript: (_) @key)
  right: (_) @value)
