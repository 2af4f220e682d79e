"""`therapy-align chat`: a screened, streamed, multi-turn terminal session with a counselling model.

May import ``data``, ``training``, ``safety`` and the top-level helpers. Nothing typed is logged or
sent anywhere; the transcript exists only in memory until the user types ``/save FILE``.
"""
