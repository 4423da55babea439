"""Comments: the form (views.py), the JSON API and live stream (api.py), and service.py behind them."""
