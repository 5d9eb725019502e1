"""The instances' own HTTP endpoints, as the management API calls them."""

from concurrent.futures import ThreadPoolExecutor

import requests

from fleet.errors import InstanceUnreachable

#: endpoints of an instance that the management API passes commands to
COMMANDS = ("start_worker", "stop_worker", "kill")
#: how long a probe may take: a visit in progress ends first, then a login and a few
#: pages (the instance itself gives up after workers.probing.ASK_TIMEOUT_SECONDS)
PROBE_TIMEOUT_SECONDS = 130.0


class Instances:
    """Talks to instances on ``host``.

    :param timeout: seconds one instance gets to answer; keeps one hung instance from
        slowing the overview of all the others
    """

    def __init__(self, host="127.0.0.1", timeout=1.5):
        self.host = host
        self.timeout = timeout

    def _url(self, port, path):
        return f"http://{self.host}:{port}/{path}"

    def alive(self, port, workshop):
        """:returns: the ``/alive`` answer, or None when there is no answer in time, or
            when whatever answers on the port serves another workshop"""
        try:
            r = requests.get(self._url(port, "alive"), timeout=self.timeout)
            answer = r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None
        if not isinstance(answer, dict) or answer.get("workshop") != workshop:
            return None
        return answer

    def alive_many(self, targets):
        """Ask several instances at once.

        :param targets: ``[(port, workshop), ...]``
        :returns: the answers in the same order (None where there was none)
        """
        return self._many(self.alive, targets)

    @staticmethod
    def _many(ask, targets):
        """``ask(*target)`` for every target at once: one hung instance costs one timeout."""
        if not targets:
            return []
        with ThreadPoolExecutor(max_workers=min(64, len(targets))) as pool:
            return list(pool.map(lambda t: ask(*t), targets))

    def metrics(self, port, api_token):
        """:returns: the text of the instance's ``GET /metrics``, or None when there is no
            answer in time or the answer is not a success"""
        try:
            r = requests.get(self._url(port, "metrics"), timeout=self.timeout,
                             headers={"Authorization": f"Bearer {api_token}"})
        except requests.RequestException:
            return None
        return r.text if r.status_code == 200 else None

    def metrics_many(self, targets):
        """:param targets: ``[(port, api_token), ...]``
        :returns: the texts in the same order (None where there was none)"""
        return self._many(self.metrics, targets)

    def request(self, port, api_token, method, path, params=None, timeout=None):
        """Any other request to one instance with its own token (the order endpoints).

        :param path: the instance's path, its parts already URL-quoted
        :param timeout: seconds; by default the overview's timeout, at least 10
        :returns: the :class:`requests.Response` (whatever its status)
        :raises InstanceUnreachable: no answer in time
        """
        try:
            return requests.request(method, self._url(port, path.lstrip("/")), params=params,
                                    timeout=timeout or max(self.timeout, 10.0),
                                    headers={"Authorization": f"Bearer {api_token}"})
        except requests.RequestException as e:
            raise InstanceUnreachable(
                f"the instance on port {port} did not answer ({e.__class__.__name__})") from None

    def command(self, port, api_token, command):
        """``PUT /<command>`` on one instance with its own token.

        :returns: the instance's JSON answer
        :raises InstanceUnreachable: no answer, or an answer that is not a success
        """
        assert command in COMMANDS
        try:
            r = requests.put(self._url(port, command), timeout=max(self.timeout, 5.0),
                             headers={"Authorization": f"Bearer {api_token}"})
        except requests.RequestException as e:
            raise InstanceUnreachable(
                f"the instance on port {port} did not answer ({e.__class__.__name__})") from None
        if r.status_code != 200:
            raise InstanceUnreachable(f"the instance on port {port} answered {r.status_code} to {command}")
        try:
            return r.json()
        except ValueError:
            return {}

    def probe(self, port, api_token, timeout=PROBE_TIMEOUT_SECONDS):
        """``PUT /probe`` on one instance: it checks its ERP's screens, reading only
        (workers/probing.py), and answers what it found.

        :returns: the instance's ``erp`` object (``state``, ``detail``, ``held``, ...)
        :raises InstanceUnreachable: no answer; or the probe did not run (the worker is
            stopped), with the instance's reason
        """
        r = self.request(port, api_token, "PUT", "probe", timeout=timeout)
        try:
            answer = r.json()
        except ValueError:
            answer = {}
        if r.status_code != 200:
            why = answer.get("message") or f"it answered {r.status_code}"
            raise InstanceUnreachable(f"the instance on port {port} did not probe: {why}")
        return answer
