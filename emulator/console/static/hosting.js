// smemu console: the hosting choices beyond inference components (a model on the variant, with a shadow
// variant and data capture; serverless), and the endpoint page's variants and captured data.
"use strict";

const Hosting = (() => {
  const {$, $$, el, value, checked, radio, post} = Console.util;
  const CAPTURE_POLL_MS = 3000;  // captured files are listed at most every 3 s

  // ---- Deploy page ----------------------------------------------------------------------------
  function deployFields(onChange) {
    function show() {
      const hosting = radio("Hosting");
      const single = hosting !== "components";
      $("#serverless-fields").hidden = hosting !== "serverless";
      $("#instance-section").hidden = hosting === "serverless" || radio("EndpointMode") !== "new";
      $("#max-instances").hidden = single;
      $("#shadow-section").hidden = hosting !== "model";
      $("#capture-section").hidden = hosting !== "model";
      $("#network-fields").hidden = single;
      $("#deploy-models").classList.toggle("single", single);
      $("#add-model").hidden = single;
      const existing = $('input[name="EndpointMode"][value="existing"]');
      if (single && existing.checked) { $('input[name="EndpointMode"][value="new"]').checked = true; existing.dispatchEvent(new Event("change")); }
      existing.disabled = single || existing.dataset.none === "1";
      onChange();
    }
    const existing = $('input[name="EndpointMode"][value="existing"]');
    existing.dataset.none = existing.disabled ? "1" : "0";
    $$('input[name="Hosting"]').forEach(node => node.addEventListener("change", show));
    $$('input[name="EndpointMode"]').forEach(node => node.addEventListener("change", show));
    $("#ShadowEnabled").addEventListener("change", () => { $("#shadow-fields").hidden = !checked("ShadowEnabled"); });
    $("#CaptureEnabled").addEventListener("change", () => { $("#capture-fields").hidden = !checked("CaptureEnabled"); });
    show();
  }

  // The page's members for this hosting; a model-based or serverless endpoint drops what only components use.
  function request(base) {
    const hosting = radio("Hosting");
    if (hosting === "components") return {...base, Hosting: hosting};
    const {ExecutionRoleArn, Subnets, SecurityGroupIds, EnableNetworkIsolation, MaxInstanceCount, ...rest} = base;
    const fields = {...rest, Hosting: hosting};
    if (hosting === "serverless") {
      Object.assign(fields, {ServerlessMemory: value("ServerlessMemory"), ServerlessMaxConcurrency: value("ServerlessMaxConcurrency"),
                             ServerlessProvisioned: value("ServerlessProvisioned")});
    } else {
      if (checked("ShadowEnabled")) {
        Object.assign(fields, {ShadowEnabled: true, ShadowModel: value("ShadowModel"), ShadowVariantName: value("ShadowVariantName"),
                               ShadowInstanceType: value("ShadowInstanceType"), ShadowInstanceCount: value("ShadowInstanceCount"),
                               ShadowShare: value("ShadowShare")});
      }
      if (checked("CaptureEnabled")) Object.assign(fields, captureFields());
    }
    return fields;
  }

  function captureFields() {
    return {CaptureEnabled: true, CaptureDestination: value("CaptureDestination"), CaptureSampling: value("CaptureSampling"),
            CaptureInput: checked("CaptureInput"), CaptureOutput: checked("CaptureOutput"),
            CaptureCsvTypes: value("CaptureCsvTypes"), CaptureJsonTypes: value("CaptureJsonTypes")};
  }

  // ---- Endpoint page --------------------------------------------------------------------------
  function shadowNames(described) {
    return new Set((described.ShadowProductionVariants || []).map(v => v.VariantName));
  }

  function renderVariants(described) {
    const rows = [];
    const add = (variant, role) => {
      const serverless = variant.CurrentServerlessConfig;
      const desiredServerless = variant.DesiredServerlessConfig;
      const size = serverless
        ? `serverless · ${serverless.MemorySizeInMB} MB · max concurrency ${serverless.MaxConcurrency}` +
          (serverless.ProvisionedConcurrency ? ` · provisioned ${serverless.ProvisionedConcurrency}` : "") +
          (desiredServerless && JSON.stringify(desiredServerless) !== JSON.stringify(serverless)
            ? ` (changing to max ${desiredServerless.MaxConcurrency}${desiredServerless.ProvisionedConcurrency ? ", provisioned " + desiredServerless.ProvisionedConcurrency : ""})` : "")
        : `${variant.CurrentInstanceCount ?? "?"} of ${variant.DesiredInstanceCount ?? "?"} instances`;
      rows.push(el("tr", {"data-variant": variant.VariantName},
        el("td", {}, variant.VariantName), el("td", {class: "role"}, role), el("td", {class: "size"}, size),
        el("td", {class: "weight"}, variant.CurrentWeight ?? ""),
        el("td", {}, (variant.VariantStatus || []).map(s => s.Status).join(", ") || "—")));
    };
    for (const variant of described.ProductionVariants || []) add(variant, variant.CurrentServerlessConfig ? "serverless" : "production");
    for (const variant of described.ShadowProductionVariants || []) add(variant, "shadow");
    $("#variants tbody").replaceChildren(...rows);
  }

  function renderCapture(described) {
    const capture = described.DataCaptureConfig;
    const section = $("#capture");
    section.hidden = !capture && !(described.ProductionVariants || []).some(v => !v.CurrentServerlessConfig);
    const on = !!(capture && capture.EnableCapture);
    $("#capture-summary").textContent = capture
      ? `${capture.CaptureStatus} · ${capture.CurrentSamplingPercentage}% sampled · to ${capture.DestinationS3Uri}`
      : "Data capture is not configured on this endpoint.";
    const toggle = $("#capture-toggle");
    toggle.textContent = on ? "Turn capture off" : "Turn capture on";
    toggle.dataset.enable = on ? "0" : "1";
    $("#capture-new-fields").hidden = on || !!capture;  // turning it back on keeps the configured destination
  }

  function endpointPanels(endpoint) {
    let capturePolled = 0;
    $("#capture-toggle").addEventListener("click", async () => {
      $("#capture-error").textContent = "";
      const body = $("#capture-toggle").dataset.enable === "1"
        ? {Enable: true, ...($("#capture-new-fields").hidden ? {} : captureFields())} : {Enable: false};
      const {ok, data} = await post(`/console/api/endpoints/${encodeURIComponent(endpoint)}/capture`, body);
      $("#capture-error").textContent = ok ? `Updating to endpoint config ${data.EndpointConfigName}.` : (data.Code ? data.Code + ": " : "") + data.Message;
    });

    async function listFiles() {
      const response = await fetch(`/console/api/endpoints/${encodeURIComponent(endpoint)}/captures`);
      const answer = await response.json();
      if (!response.ok) return;
      $("#capture-files-error").textContent = answer.Error || "";
      const rows = answer.Files.map(file => el("tr", {"data-uri": file.Uri},
        el("td", {class: "variant"}, file.Variant), el("td", {class: "mono small"}, file.Uri.slice(answer.Destination.length)),
        el("td", {}, `${file.Bytes} B`), el("td", {}, new Date(file.Modified * 1000).toLocaleString()),
        el("td", {}, el("button", {type: "button", class: "view-capture", onclick: () => showRecords(file.Uri)}, "View"))));
      $("#capture-files tbody").replaceChildren(...rows);
      $("#capture-files-empty").hidden = rows.length > 0;
    }

    async function showRecords(uri) {
      const response = await fetch(`/console/api/endpoints/${encodeURIComponent(endpoint)}/captures/records?uri=${encodeURIComponent(uri)}`);
      const answer = await response.json();
      $("#capture-records").textContent = response.ok
        ? `${answer.Count} records in ${uri}\n` + answer.Records.map(r => JSON.stringify(r)).join("\n")
        : answer.Message;
    }

    return function update(described) {
      renderVariants(described);
      renderCapture(described);
      if (!$("#capture").hidden && Date.now() - capturePolled >= CAPTURE_POLL_MS) {
        capturePolled = Date.now();
        listFiles();
      }
    };
  }

  return {deployFields, request, endpointPanels, shadowNames};
})();
