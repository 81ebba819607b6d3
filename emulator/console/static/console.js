// smemu console: the little JavaScript its pages need (no framework, no build step).
// Single SageMaker and Logs operations go to the AWS JSON API on this same port, as boto3 sends
// them; uploads, packaging and multi-step deploys go to the console's routes under /console/api/.
"use strict";

const Console = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const POLL_MS = 1000;  // at most one request a second per open page

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  const SERVICES = {sagemaker: "SageMaker", logs: "Logs_20140328"};

  async function aws(service, operation, params) {
    const response = await fetch("/", {
      method: "POST",
      headers: {"X-Amz-Target": `${SERVICES[service]}.${operation}`, "Content-Type": "application/x-amz-json-1.1"},
      body: JSON.stringify(params),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || body.Message || `HTTP ${response.status}`);
    return body;
  }

  async function post(url, body) {
    const response = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    return {ok: response.ok, data: await response.json()};
  }

  function value(id) { const node = document.getElementById(id); return node ? node.value.trim() : ""; }
  function checked(id) { const node = document.getElementById(id); return !!(node && node.checked); }
  function radio(name) { const node = $(`input[name="${name}"]:checked`); return node ? node.value : ""; }
  function list(id) { return value(id).split(",").map(s => s.trim()).filter(Boolean); }

  function showErrors(answer) {
    $$(".field-error").forEach(node => { node.textContent = ""; });
    const general = $("#form-error");
    general.textContent = "";
    if (!answer) return;
    const field = answer.Field && $(`.field-error[data-for="${answer.Field}"]`);
    if (field && field.offsetParent !== null) field.textContent = answer.Message;
    else general.textContent = (answer.Code ? answer.Code + ": " : "") + answer.Message;
  }

  // Key-value rows (environment variables, tags).
  function addRow(container) {
    container.append(el("div", {class: "row"},
      el("input", {class: "row-key", placeholder: "Key"}), el("input", {class: "row-value", placeholder: "Value"}),
      el("button", {type: "button", onclick: event => event.target.parentNode.remove()}, "Remove")));
  }
  function rowsOf(id) {
    return $$(`#${id} .row`).map(row => ({Key: $(".row-key", row).value.trim(), Value: $(".row-value", row).value}))
      .filter(row => row.Key);
  }
  function wireRows() {
    $$(".add-row").forEach(button => button.addEventListener("click", () => addRow(document.getElementById(button.dataset.rows))));
  }

  // ---- Models ---------------------------------------------------------------------------------
  function modelsPage() {
    const button = $("#deploy-selected");
    const selected = () => $$(".select-model:checked").map(box => box.value);
    $$(".select-model").forEach(box => box.addEventListener("change", () => { button.disabled = selected().length === 0; }));
    button.addEventListener("click", () => {
      location.href = "/console/deploy?" + selected().map(m => "model=" + encodeURIComponent(m)).join("&");
    });
  }

  // ---- Create model ---------------------------------------------------------------------------
  function createModelPage(runtime) {
    const form = $("#create-form");
    const uploadId = form.dataset.upload;
    const pending = new Set();
    wireRows();

    function showChoice(name, mapping) {
      const chosen = radio(name);
      for (const [choice, id] of Object.entries(mapping)) document.getElementById(id).hidden = choice !== chosen;
    }
    function framework() {
      const option = $("#Framework").selectedOptions[0];
      const versions = $("#FrameworkVersion");
      if (versions.dataset.framework !== option.value) {
        versions.replaceChildren(el("option", {value: option.dataset.version}, option.dataset.version));
        versions.dataset.framework = option.value;
      }
      $("#image-uri").textContent = option.dataset[radio("Hardware") || "cpu"];
      $("#smemu-image").textContent = runtime === "docker" ? option.dataset.smemu : "smemu's serving toolkit, as a process";
    }
    function containerType() {
      showChoice("ContainerType", {prebuilt: "prebuilt-fields", byoc: "byoc-fields"});
      const raw = $('input[name="ArtifactsMode"][value="upload"]');
      raw.disabled = radio("ContainerType") === "byoc";  // raw files are packaged for PyTorch and XGBoost only
      if (raw.disabled && raw.checked) $('input[name="ArtifactsMode"][value="archive"]').checked = true;
      artifactsMode();
    }
    function artifactsMode() {
      showChoice("ArtifactsMode", {upload: "upload-fields", archive: "archive-fields", s3: "s3-fields"});
      const storage = $("#storage-fields");
      if (storage) storage.hidden = radio("ArtifactsMode") === "s3";
    }
    let imageTimer = null;
    function checkImage() {
      clearTimeout(imageTimer);
      imageTimer = setTimeout(async () => {
        const uri = value("Image");
        if (!uri) { $("#image-check").textContent = ""; return; }
        const answer = await (await fetch("/console/api/images?uri=" + encodeURIComponent(uri))).json();
        $("#image-check").textContent = answer.Message;
        $("#image-check").className = answer.Runnable ? "hint ok" : "hint warning-text";
      }, 300);
    }

    function upload(slot, file) {
      const shown = $(`.uploads[data-slot="${slot}"]`);
      const bar = el("progress", {max: Math.max(file.size, 1), value: 0});
      const state = el("span", {class: "upload-state"}, "uploading");
      shown.append(el("div", {class: "upload"}, el("span", {class: "mono"}, file.name), bar, state));
      const done = new Promise((resolve, reject) => {
        const request = new XMLHttpRequest();
        request.open("PUT", `/console/api/uploads/${uploadId}/${slot}/${encodeURIComponent(file.name)}`);
        request.upload.onprogress = event => { if (event.lengthComputable) bar.value = event.loaded; };
        request.onload = () => {
          if (request.status === 200) { bar.value = bar.max; state.textContent = "uploaded"; resolve(); }
          else { state.textContent = JSON.parse(request.responseText).Message; state.className = "error"; reject(new Error(state.textContent)); }
        };
        request.onerror = () => { state.textContent = "upload failed"; reject(new Error("upload failed")); };
        request.send(file);
      });
      pending.add(done);
      done.finally(() => pending.delete(done)).catch(() => {});
      return done;
    }
    const toBucket = slot => slot === "archive" && $("#Bucket");  // Studio's way: the browser puts it in the bucket
    $$('input[type="file"]').forEach(input => input.addEventListener("change", async () => {
      const slot = input.dataset.slot;
      if (toBucket(slot)) { $(`.uploads[data-slot="${slot}"]`).replaceChildren(); return; }  // sent on Create
      $(`.uploads[data-slot="${slot}"]`).replaceChildren();
      await fetch(`/console/api/uploads/${uploadId}/${slot}`, {method: "DELETE"});  // a new choice replaces the old
      for (const file of input.files) upload(slot, file);
    }));

    $("#Framework").addEventListener("change", framework);
    $$('input[name="Hardware"]').forEach(node => node.addEventListener("change", framework));
    $$('input[name="ContainerType"]').forEach(node => node.addEventListener("change", containerType));
    $$('input[name="ArtifactsMode"]').forEach(node => node.addEventListener("change", artifactsMode));
    $$('input[name="InferenceCode"]').forEach(node => node.addEventListener("change",
      () => { $("#code-fields").hidden = radio("InferenceCode") !== "custom"; }));
    $("#Image").addEventListener("input", checkImage);
    const wantsRecommendations = $("#Recommendations");
    if (!wantsRecommendations.disabled) {
      wantsRecommendations.addEventListener("change", () => { $("#recommendation-fields").hidden = !wantsRecommendations.checked; });
    }
    framework();
    containerType();

    $("#create").addEventListener("click", async () => {
      const button = $("#create");
      button.disabled = true;
      showErrors(null);
      $("#form-ok").textContent = pending.size ? "waiting for uploads to finish ..." : "creating ...";
      try {
        await Promise.all(Array.from(pending));
      } catch (error) {
        $("#form-ok").textContent = "";
        showErrors({Message: "An upload failed: " + error.message});
        button.disabled = false;
        return;
      }
      let archiveS3Uri = null;
      if (radio("ArtifactsMode") === "archive" && toBucket("archive")) {
        try {
          archiveS3Uri = await S3Upload.archive();
        } catch (error) {
          $("#form-ok").textContent = "";
          showErrors(error.answer || {Message: "The upload failed: " + error.message});
          button.disabled = false;
          return;
        }
      }
      const environment = {};
      for (const row of rowsOf("environment")) environment[row.Key] = row.Value;
      const request = {
        ModelName: value("ModelName"), ContainerType: radio("ContainerType"), Framework: value("Framework"),
        FrameworkVersion: value("FrameworkVersion"), Hardware: radio("Hardware"), Image: value("Image"),
        ArtifactsMode: radio("ArtifactsMode"), Upload: uploadId, InferenceCode: radio("InferenceCode"),
        Bucket: value("Bucket"), S3Uri: value("S3Uri"), ArchiveS3Uri: archiveS3Uri, ExecutionRoleArn: value("ExecutionRoleArn"),
        Subnets: list("Subnets"), SecurityGroupIds: list("SecurityGroupIds"),
        EnableNetworkIsolation: checked("EnableNetworkIsolation"), Environment: environment, Tags: rowsOf("tags"),
        Recommendations: checked("Recommendations"), PayloadContentType: value("PayloadContentType"),
      };
      $("#form-ok").textContent = "packaging and creating ...";
      const {ok, data} = await post("/console/api/models", request);
      button.disabled = false;
      if (!ok) { $("#form-ok").textContent = ""; showErrors(data); return; }
      $("#form-ok").textContent = `Created ${data.ModelName} (${data.ModelDataUrl}).`;
      const next = new URLSearchParams({created: data.ModelName});
      if (data.RecommendationJob) next.set("recommendation", data.RecommendationJob);
      if (data.RecommendationJobError) next.set("warning", data.RecommendationJobError);
      location.href = "/console/models?" + next.toString();
    });
  }
  // ---- Deploy ---------------------------------------------------------------------------------
  function deployPage(chosen) {
    const body = $("#deploy-models tbody");
    wireRows();
    function addModel(name) {
      const row = $("#model-row").content.firstElementChild.cloneNode(true);
      if (name) $(".model-name", row).value = name;
      $(".remove-model", row).addEventListener("click", () => { row.remove(); checkSoon(); });
      body.append(row);
      checkSoon();
    }
    function request() {
      const fresh = radio("EndpointMode") === "new";
      return Hosting.request({
        NewEndpoint: fresh, EndpointName: fresh ? value("EndpointName") : value("ExistingEndpoint"),
        InstanceType: value("InstanceType"), InitialInstanceCount: value("InitialInstanceCount"),
        MaxInstanceCount: value("MaxInstanceCount"),
        Models: $$(".model-row", body).map(row => ({
          ModelName: $(".model-name", row).value, Cores: $(".cores", row).value, MinCopies: $(".min-copies", row).value,
          MinMemoryMb: $(".min-memory", row).value, MaxMemoryMb: $(".max-memory", row).value,
          Accelerators: $(".accelerators", row).value})),
        ExecutionRoleArn: value("ExecutionRoleArn"), Subnets: list("Subnets"), SecurityGroupIds: list("SecurityGroupIds"),
        KmsKeyId: value("KmsKeyId"), EnableNetworkIsolation: checked("EnableNetworkIsolation"),
        DownloadTimeout: value("DownloadTimeout"), StartupTimeout: value("StartupTimeout"), Tags: rowsOf("tags"),
      });
    }
    function showIncompatible(found) {
      const box = $("#compat");
      box.hidden = found.length === 0;
      $("#deploy").disabled = found.length > 0;
      if (!found.length) return;
      const settings = [...new Set(found.map(d => d.Setting))];
      $("#compat-summary").textContent = `These models and the endpoint are not compatible: ${settings.join(", ")} must match.`;
      $("#compat-details tbody").replaceChildren(...found.map(d => el("tr", {},
        el("td", {}, d.Setting), el("td", {}, d.Left), el("td", {class: "mono"}, d.LeftValue),
        el("td", {}, d.Right), el("td", {class: "mono"}, d.RightValue))));
    }
    let timer = null;
    function checkSoon() {
      clearTimeout(timer);
      timer = setTimeout(async () => showIncompatible((await post("/console/api/compatibility", request())).data.Incompatible), 200);
    }
    function endpointMode() {
      const fresh = radio("EndpointMode") === "new";
      $("#new-endpoint").hidden = !fresh;
      $("#existing-endpoint").hidden = fresh;
      $("#instance-section").hidden = !fresh;  // an existing endpoint keeps its instances
      checkSoon();
    }
    $("#compat-details-toggle").addEventListener("click", () => { $("#compat-details").hidden = !$("#compat-details").hidden; });
    $("#add-model").addEventListener("click", () => addModel(null));
    $$('input[name="EndpointMode"]').forEach(node => node.addEventListener("change", endpointMode));
    $("#deploy-form").addEventListener("input", checkSoon);
    $("#deploy-form").addEventListener("change", checkSoon);
    chosen.forEach(addModel);
    if (!chosen.length) addModel(null);
    endpointMode();
    Hosting.deployFields(checkSoon);

    $("#deploy").addEventListener("click", async () => {
      showErrors(null);
      $("#deploy").disabled = true;
      const {ok, data} = await post("/console/api/deploy", request());
      if (!ok) {
        showErrors(data);
        if (data.Incompatible) showIncompatible(data.Incompatible);
        else $("#deploy").disabled = false;
        return;
      }
      follow(data.EndpointName, data.InferenceComponents);
    });

    // The deploy's real phases, from the endpoint's variant status and the components' states.
    function follow(endpoint, components) {
      const steps = $("#progress");
      const tick = async () => {
        let described, states;
        try {
          described = await aws("sagemaker", "DescribeEndpoint", {EndpointName: endpoint});
          states = await Promise.all(components.map(c => aws("sagemaker", "DescribeInferenceComponent", {InferenceComponentName: c})));
        } catch (error) { showErrors({Message: error.message}); return; }
        const lines = [el("li", {}, `Endpoint ${endpoint}: ${described.EndpointStatus}`)];
        for (const variant of described.ProductionVariants || []) {
          for (const status of variant.VariantStatus || []) {
            lines.push(el("li", {}, `${variant.VariantName}: ${status.Status}${status.StatusMessage ? " — " + status.StatusMessage : ""}`));
          }
        }
        for (const state of states) {
          const rc = state.RuntimeConfig || {};
          lines.push(el("li", {}, `${state.InferenceComponentName}: ${state.InferenceComponentStatus}, ` +
            `${rc.CurrentCopyCount ?? 0} of ${rc.DesiredCopyCount ?? 0} copies serving`));
        }
        steps.replaceChildren(...lines);
        const failed = [described, ...states].find(d => (d.EndpointStatus || d.InferenceComponentStatus) === "Failed");
        if (failed) {
          $("#form-error").textContent = failed.FailureReason || "The deploy failed.";
          $("#form-error").classList.add("failure-reason");
          return;
        }
        if (described.EndpointStatus === "InService" && states.every(s => s.InferenceComponentStatus === "InService")) {
          location.href = "/console/endpoints/" + encodeURIComponent(endpoint) + "?deployed=1";
          return;
        }
        setTimeout(tick, POLL_MS);
      };
      tick();
    }
  }

  // ---- Endpoint -------------------------------------------------------------------------------
  function cpuList(cpus) {
    if (!cpus || !cpus.length) return "any";
    const sorted = [...cpus].sort((a, b) => a - b), ranges = [];
    let start = sorted[0], last = sorted[0];
    for (const cpu of sorted.slice(1).concat([null])) {
      if (cpu === last + 1) { last = cpu; continue; }
      ranges.push(start === last ? `${start}` : `${start}-${last}`);
      start = last = cpu;
    }
    return ranges.join(",");
  }

  function bar(label, used, capacity, unit) {
    const share = capacity ? Math.min(100, 100 * used / capacity) : 0;
    return el("div", {class: "bar"}, el("span", {}, `${label} ${+used.toFixed(2)} / ${capacity} ${unit}`),
      el("div", {class: "track"}, el("div", {class: "fill", style: `width:${share}%`})));
  }

  function copyBox(copy) {
    return el("div", {class: `copy ${copy.State || ""}`, "data-copy": copy.CopyId, "data-component": copy.InferenceComponentName || ""},
      el("strong", {}, copy.InferenceComponentName || copy.Variant || ""),
      el("span", {class: "small"}, `copy ${copy.CopyId} · ${copy.State}`),
      copy.HostCpus !== undefined ? el("span", {class: "small"}, `host CPUs ${cpuList(copy.HostCpus)} · ${copy.Cores ?? "?"} cores`) : "",
      copy.MemoryLimitMb !== undefined ? el("span", {class: "small"}, `memory cap ${copy.MemoryLimitMb ?? "none"} MB (${copy.MemoryEnforcement || "-"})`) : "",
      copy.Pid ? el("span", {class: "small"}, `pid ${copy.Pid}${copy.Container ? " · " + copy.Container : ""}`) : "");
  }

  function renderPlacement(view) {
    const map = $("#placement");
    if (!view) { map.replaceChildren(el("p", {class: "empty"}, "Nothing runs for this endpoint now.")); return; }
    const boxes = [];
    for (const variant of view.Variants) {
      for (const instance of variant.Instances || []) {
        boxes.push(el("div", {class: "instance", "data-instance": instance.InstanceId},
          el("div", {class: "instance-head"}, el("strong", {}, instance.InstanceType), el("span", {class: "small mono"}, ` ${instance.InstanceId} · ${variant.VariantName}`)),
          bar("cores", instance.Used.Cores, instance.Capacity.Cores, ""),
          bar("memory", instance.Used.MemoryMb, instance.Capacity.MemoryMb, "MB"),
          instance.Capacity.Accelerators ? bar("accelerators", instance.Used.Accelerators, instance.Capacity.Accelerators, "") : "",
          el("div", {class: "copies"}, (instance.Copies || []).map(copyBox))));
      }
      if (!variant.Instances) {  // an endpoint whose variants name models: its copies are its instances
        boxes.push(el("div", {class: "instance", "data-variant": variant.VariantName}, el("div", {class: "instance-head"},
          el("strong", {}, variant.VariantName), variant.Shadow ? el("span", {class: "small shadow-label"}, " (shadow)") : ""),
          el("div", {class: "copies"}, (variant.Copies || []).map(copyBox))));
      }
    }
    map.replaceChildren(...(boxes.length ? boxes : [el("p", {class: "empty"}, "No instances.")]));
    const waiting = [];
    for (const component of view.InferenceComponents) {
      for (let i = 0; i < component.PendingCopyCount; i++) {
        waiting.push(el("div", {class: "copy waiting", "data-component": component.InferenceComponentName},
          el("strong", {}, component.InferenceComponentName), el("span", {class: "small"}, "waiting for capacity or starting")));
      }
    }
    $("#pending").replaceChildren(...(waiting.length ? [el("h3", {}, "Pending copies"), el("div", {class: "copies"}, waiting)] : []));
  }

  function endpointPage(endpoint) {
    const rows = new Map();
    const history = new Map();  // series → [{t, invocations, errors, latencyMs}]
    let logGroup = "", logStream = "", logToken = "";
    const modelOptions = $("#model-options").innerHTML;
    const panels = Hosting.endpointPanels(endpoint);
    let shadows = new Set();

    async function change(operation, params) {
      $("#component-error").textContent = "";
      try { await aws("sagemaker", operation, params); }
      catch (error) { $("#component-error").textContent = error.message; }
    }

    function componentRow(component) {
      const name = component.InferenceComponentName;
      const count = el("input", {type: "number", min: 0, class: "copy-count", value: component.RuntimeConfig.DesiredCopyCount});
      const setCount = n => change("UpdateInferenceComponentRuntimeConfig",
        {InferenceComponentName: name, DesiredRuntimeConfig: {CopyCount: n}});
      const model = el("select", {class: "new-model"});
      model.innerHTML = modelOptions;
      model.value = component.Specification.ModelName || "";
      const row = el("tr", {"data-component": name},
        el("td", {}, name), el("td", {class: "model"}), el("td", {class: "state"}), el("td", {class: "copies"}),
        el("td", {class: "no-capacity"}),
        el("td", {}, count,
          el("button", {class: "set-count", onclick: () => setCount(parseInt(count.value, 10))}, "Set"),
          el("button", {class: "scale-up", onclick: () => setCount(row.desired + 1)}, "+1"),
          el("button", {class: "scale-down", onclick: () => setCount(Math.max(0, row.desired - 1))}, "−1"),
          el("button", {class: "scale-zero", onclick: () => setCount(0)}, "To zero")),
        el("td", {}, model, el("button", {class: "update-model", onclick: () => change("UpdateInferenceComponent", {
          InferenceComponentName: name, Specification: {ModelName: model.value,
            ComputeResourceRequirements: row.component.Specification.ComputeResourceRequirements},
          ...guardrails(row)})}, "Update"), guardrailFields()),
        el("td", {}, el("button", {class: "delete-component danger", onclick: () => change("DeleteInferenceComponent",
          {InferenceComponentName: name})}, "Delete")));
      return row;
    }

    // UpdateInferenceComponent's DeploymentConfig: rolling batches of copies, a bake, an alarm that rolls back.
    function guardrailFields() {
      return el("details", {class: "guardrails"}, el("summary", {}, "Guardrails"),
        el("label", {class: "inline"}, el("input", {type: "checkbox", class: "guarded"}), " Rolling update"),
        el("label", {}, "Copies per batch ", el("input", {type: "number", min: 1, value: 1, class: "batch"})),
        el("label", {}, "Bake (s) ", el("input", {type: "number", min: 0, max: 3600, value: 60, class: "bake"})),
        el("label", {}, "Rollback alarm ", el("input", {class: "rollback-alarm", placeholder: "(CloudWatch alarm name)"})));
    }

    function guardrails(row) {
      if (!$(".guarded", row).checked) return {};
      const policy = {MaximumBatchSize: {Type: "COPY_COUNT", Value: parseInt($(".batch", row).value, 10)},
                      WaitIntervalInSeconds: parseInt($(".bake", row).value, 10)};
      const alarm = $(".rollback-alarm", row).value.trim();
      return {DeploymentConfig: {RollingUpdatePolicy: policy,
        ...(alarm ? {AutoRollbackConfiguration: {Alarms: [{AlarmName: alarm}]}} : {})}};
    }

    function renderDeployments(view) {
      const items = [];
      const describe = (title, d) => {
        const left = d.BakeEndsAt ? Math.max(0, Math.round(d.BakeEndsAt - Date.now() / 1000)) : null;
        const parts = [el("h3", {}, title), el("p", {}, el("span", {class: "status Updating phase"}, d.Phase), " ",
          el("span", {class: "small"}, d.Routing && d.Routing !== "ROLLING" ? `${d.Kind} ${d.Routing}` : (d.Kind || ""))),
          el("p", {class: "message"}, d.Message || "")];
        if (d.NewFleetShare !== undefined && d.NewFleetShare !== null) {
          const green = Math.round(d.NewFleetShare * 100);
          parts.push(el("div", {class: "share"},
            el("span", {class: "blue", style: `width:${100 - green}%`}, `${d.OldEndpointConfigName}: ${100 - green}%`),
            el("span", {class: "green", style: `width:${green}%`}, `${d.NewEndpointConfigName}: ${green}%`)));
        }
        if (left !== null) parts.push(el("p", {class: "countdown"}, `Bake ends in ${left} s`));
        if (d.Alarms && d.Alarms.length) parts.push(el("p", {class: "small alarms"}, `Alarms watched: ${d.Alarms.join(", ")}`));
        return el("div", {class: "deployment"}, ...parts);
      };
      if (view && view.Endpoint) items.push(describe(`Endpoint → ${view.Endpoint.NewEndpointConfigName}`, view.Endpoint));
      for (const c of (view && view.InferenceComponents) || []) items.push(describe(`Inference component ${c.InferenceComponentName}`, c));
      $("#deployment").hidden = items.length === 0;
      $("#deployment-body").replaceChildren(...items);
    }

    function renderComponents(components, placementView) {
      const body = $("#components tbody");
      const seen = new Set();
      const noCapacity = new Map(((placementView || {}).InferenceComponents || []).map(c => [c.InferenceComponentName, c.NoCapacityInvocationFailures]));
      for (const component of components) {
        const name = component.InferenceComponentName;
        seen.add(name);
        let row = rows.get(name);
        if (!row) { row = componentRow(component); rows.set(name, row); body.append(row); }
        row.component = component;
        row.desired = component.RuntimeConfig.DesiredCopyCount;
        $(".model", row).textContent = component.Specification.ModelName || "";
        $(".state", row).replaceChildren(el("span", {class: `status ${component.InferenceComponentStatus}`}, component.InferenceComponentStatus),
          component.FailureReason ? el("div", {class: "error small"}, component.FailureReason) : "");
        $(".copies", row).textContent = `${component.RuntimeConfig.CurrentCopyCount ?? 0} / ${component.RuntimeConfig.DesiredCopyCount}`;
        $(".no-capacity", row).textContent = noCapacity.get(name) ?? 0;
        const count = $(".copy-count", row);
        if (document.activeElement !== count) count.value = row.desired;
      }
      for (const [name, row] of rows) if (!seen.has(name)) { row.remove(); rows.delete(name); }
    }

    function renderTargets(described, components) {
      const target = $("#invoke-target");
      const options = components.length
        ? components.map(c => ["component", c.InferenceComponentName])
        : (described.ProductionVariants || []).map(v => ["variant", v.VariantName]);
      const key = JSON.stringify(options);
      if (target.dataset.key === key) return;
      const previous = target.value;
      target.replaceChildren(...options.map(([kind, name]) => el("option", {value: `${kind}:${name}`}, `${kind === "component" ? "component" : "variant"} ${name}`)));
      if (options.some(([kind, name]) => `${kind}:${name}` === previous)) target.value = previous;
      target.dataset.key = key;
    }

    function renderLogChoices(view) {
      const select = $("#log-stream");
      const copies = [];
      for (const variant of (view || {Variants: []}).Variants) {
        for (const instance of variant.Instances || [{Copies: variant.Copies || []}]) {
          for (const copy of instance.Copies || []) {
            if (!copy.CopyId || !copy.Variant) continue;
            const group = copy.InferenceComponentName ? `/aws/sagemaker/InferenceComponents/${copy.InferenceComponentName}` : `/aws/sagemaker/Endpoints/${endpoint}`;
            copies.push([`${group}|${copy.Variant}/i-${copy.CopyId}`, `${copy.InferenceComponentName || copy.Variant} · copy ${copy.CopyId}`]);
          }
        }
      }
      const current = select.value;
      for (const [key, label] of copies) {
        if (!$$("option", select).some(o => o.value === key)) select.append(el("option", {value: key}, label));
      }
      if (current) select.value = current;
    }
    $("#log-stream").addEventListener("change", () => {
      [logGroup, logStream] = $("#log-stream").value.split("|");
      logToken = "";
      $("#log").textContent = "";
    });

    function chart(title, points, unit) {
      const width = 240, height = 48, max = Math.max(1e-9, ...points);
      const coords = points.map((p, i) => `${(i * width / Math.max(1, points.length - 1)).toFixed(1)},${(height - p * (height - 4) / max - 2).toFixed(1)}`);
      const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
      svg.setAttribute("class", "spark");
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", coords.join(" "));
      svg.append(line);
      const last = points.length ? points[points.length - 1] : 0;
      return el("div", {class: "chart"}, el("span", {class: "small"}, `${title}: ${+last.toFixed(2)} ${unit}`), svg);
    }

    function renderMetrics(totals, placementView) {
      const now = Date.now();
      const blocks = [];
      const noCapacity = new Map(((placementView || {}).InferenceComponents || []).map(c => [c.InferenceComponentName, c.NoCapacityInvocationFailures]));
      for (const series of totals) {
        const key = series.InferenceComponentName || series.VariantName;
        const points = history.get(key) || [];
        const previous = points.length ? points[points.length - 1].raw : null;
        const seconds = previous ? Math.max(0.001, (now - previous.t) / 1000) : 1;
        const calls = previous ? series.Invocations - previous.Invocations : 0;
        const errors = previous ? (series.Invocation4XXErrors + series.Invocation5XXErrors) - (previous.Invocation4XXErrors + previous.Invocation5XXErrors) : 0;
        const latency = previous && calls > 0 ? (series.ModelLatencyTotalUs - previous.ModelLatencyTotalUs) / calls / 1000 : 0;
        points.push({raw: {...series, t: now}, rate: calls / seconds, errors, latency});
        if (points.length > 60) points.shift();
        history.set(key, points);
        blocks.push(el("div", {class: "series", "data-series": key}, el("h3", {}, key, shadows.has(key) ? el("span", {class: "small shadow-label"}, " (shadow)") : ""),
          el("span", {class: "small"}, `${series.Invocations} invocations · ${series.Invocation4XXErrors} 4xx · ${series.Invocation5XXErrors} 5xx` +
            (noCapacity.has(key) ? ` · ${noCapacity.get(key)} NoCapacityInvocationFailures` : "")),
          chart("invocations", points.map(p => p.rate), "/s"), chart("model latency", points.map(p => p.latency), "ms"),
          chart("errors", points.map(p => p.errors), "")));
      }
      $("#charts").replaceChildren(...(blocks.length ? blocks : [el("p", {class: "empty"}, "No invocations yet.")]));
    }

    async function refresh() {
      const query = logGroup ? `?log_group=${encodeURIComponent(logGroup)}&log_stream=${encodeURIComponent(logStream)}&log_token=${encodeURIComponent(logToken)}` : "";
      try {
        const response = await fetch(`/console/api/endpoints/${encodeURIComponent(endpoint)}/live${query}`);
        const live = await response.json();
        if (!response.ok) { $("#failure-reason").textContent = live.Message; return; }
        const status = $("#endpoint-status");
        status.textContent = live.Endpoint.EndpointStatus;
        status.className = `status ${live.Endpoint.EndpointStatus}`;
        $("#failure-reason").textContent = live.Endpoint.FailureReason || "";
        shadows = Hosting.shadowNames(live.Endpoint);
        panels(live.Endpoint);
        renderPlacement(live.Placement);
        renderComponents(live.InferenceComponents, live.Placement);
        renderDeployments(live.Deployments);
        renderTargets(live.Endpoint, live.InferenceComponents);
        renderLogChoices(live.Placement);
        renderMetrics(live.Metrics, live.Placement);
        if (live.Log && !live.Log.Error) {
          const log = $("#log");
          const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          for (const event of live.Log.events) log.append(event.message + "\n");
          if (live.Log.nextForwardToken) logToken = live.Log.nextForwardToken;
          if (follow) log.scrollTop = log.scrollHeight;
        }
        $("#placement-updated").textContent = "updated " + new Date().toLocaleTimeString();
      } finally {
        setTimeout(refresh, POLL_MS);
      }
    }
    refresh();

    $("#invoke").addEventListener("click", () => invoke(endpoint));
  }

  // The event stream of InvokeEndpointWithResponseStream: messages of a 12-byte prelude, headers,
  // payload and a CRC, decoded as they arrive.
  function eventStreamDecoder(onPart, onError) {
    let buffer = new Uint8Array(0);
    const text = new TextDecoder();
    return chunk => {
      const joined = new Uint8Array(buffer.length + chunk.length);
      joined.set(buffer); joined.set(chunk, buffer.length);
      buffer = joined;
      while (buffer.length >= 12) {
        const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
        const total = view.getUint32(0), headersLength = view.getUint32(4);
        if (buffer.length < total) break;
        const headers = {};
        let at = 12;
        while (at < 12 + headersLength) {
          const nameLength = buffer[at];
          const name = text.decode(buffer.subarray(at + 1, at + 1 + nameLength));
          at += 1 + nameLength + 1;  // the type byte: smemu sends strings (7)
          const valueLength = view.getUint16(at);
          headers[name] = text.decode(buffer.subarray(at + 2, at + 2 + valueLength));
          at += 2 + valueLength;
        }
        const payload = buffer.subarray(12 + headersLength, total - 4);
        if (headers[":message-type"] === "exception") onError(headers[":exception-type"], text.decode(payload));
        else onPart(payload);
        buffer = buffer.slice(total);
      }
    };
  }

  async function invoke(endpoint) {
    const [kind, target] = value("invoke-target").split(/:(.*)/s);
    const stream = checked("invoke-stream");
    const headers = {"Content-Type": value("invoke-content-type") || "application/octet-stream"};
    if (value("invoke-accept")) headers["Accept"] = value("invoke-accept");
    if (kind === "component") headers["X-Amzn-SageMaker-Inference-Component"] = target;
    if (kind === "variant") headers["X-Amzn-SageMaker-Target-Variant"] = target;
    const answer = $("#invoke-answer");
    answer.textContent = "";
    $("#invoke-status").textContent = "…";
    $("#invoke-latency").textContent = "";
    const started = performance.now();
    const action = stream ? "invocations-response-stream" : "invocations";
    const response = await fetch(`/endpoints/${encodeURIComponent(endpoint)}/${action}`, {method: "POST", headers, body: $("#invoke-body").value});
    $("#invoke-status").textContent = `${response.status}`;
    if (stream && response.ok) {
      const decoder = new TextDecoder();
      const feed = eventStreamDecoder(
        part => { answer.append(decoder.decode(part, {stream: true})); },
        (type, message) => { answer.append(`\n${type}: ${message}`); });
      const reader = response.body.getReader();
      for (;;) {
        const {done, value: chunk} = await reader.read();
        if (done) break;
        feed(chunk);
      }
    } else {
      answer.textContent = await response.text();
    }
    $("#invoke-latency").textContent = `${(performance.now() - started).toFixed(1)} ms`;
  }

  return {modelsPage, createModelPage, deployPage, endpointPage, util: {$, $$, el, value, checked, radio, post, aws}};
})();
