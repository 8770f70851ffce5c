# Work-arounds for two bugs of the Kubernetes path's plugins, found by tests/test_k8s.py; each does nothing
# unless its plugin is loaded (the driver of `snakemake --profile profiles/k8s`), and each is marked so that
# including this file twice patches once. Remove them when the plugins are fixed upstream.


def _s3_sees_uploaded_folders():
    """With S3 storage (profiles/k8s): snakemake-storage-plugin-s3 0.3.6 remembers a "no" from is_dir(),
    so the driver, which checks a directory() output (a Zarr store) before its pod runs, never sees the
    folder the pod then uploads ("Missing files after 5 seconds ... (missing in storage)"; found by
    tests/test_k8s.py). Ask S3 again while the answer is no. Nothing happens without the plugin."""
    import sys

    s3 = sys.modules.get("snakemake_storage_plugin_s3")
    if s3 is None or getattr(s3.StorageObject.is_dir, "wm_rechecks", False):
        return

    def is_dir(self):
        if not self._is_dir:
            self._is_dir = any(self.get_subkeys())
        return self._is_dir

    is_dir.wm_rechecks = True
    s3.StorageObject.is_dir = is_dir


_s3_sees_uploaded_folders()


def _k8s_shows_the_log_of_a_failed_pod():
    """snakemake-executor-plugin-kubernetes 0.5.1 reads a failed pod's log with previous=true, which a
    kubelet refuses (400) for a container that never restarted (restartPolicy: Never, as the plugin's Jobs
    have): the plugin then raises out of its status loop, the run stops without the pod's log and without
    the profile's retries. Read the current log instead when the previous one does not exist."""
    import sys

    if "snakemake_executor_plugin_kubernetes" not in sys.modules:
        return
    import kubernetes

    api = kubernetes.client.CoreV1Api
    if getattr(api.read_namespaced_pod_log, "wm_current_log", False):
        return
    original = api.read_namespaced_pod_log

    def read_namespaced_pod_log(self, name, namespace, **kwargs):
        try:
            return original(self, name, namespace, **kwargs)
        except kubernetes.client.rest.ApiException as exc:
            if not (kwargs.get("previous") and exc.status == 400):
                raise
            return original(self, name, namespace, **{**kwargs, "previous": False})

    read_namespaced_pod_log.wm_current_log = True
    api.read_namespaced_pod_log = read_namespaced_pod_log


_k8s_shows_the_log_of_a_failed_pod()
