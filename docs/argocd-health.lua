-- Argo CD health check for canary.dev/Canary (docs/gitops.md): in argocd-cm, under
-- resource.customizations.health.canary.dev_Canary.
local hs = {}

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- Ready=False reasons that say where a rollout stands rather than a problem.
local rollout = {Initializing = true, Waiting = true, Queued = true, Progressing = true,
                 Promoting = true, Finalising = true, RolledBack = true}
local underWay = {Initializing = true, Waiting = true, Queued = true, Progressing = true,
                  Promoting = true, Finalising = true, Terminating = true}

local function verdict(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local function messageOf(c, default)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return default
end

local function health()
  if obj.status == nil or obj.status.phase == nil and obj.status.conditions == nil then
    return verdict("Progressing", "waiting for the controller")
  end
  local generation = obj.metadata and obj.metadata.generation
  local observed = obj.status.observedGeneration
  if generation ~= nil and observed ~= nil and observed ~= generation then
    return verdict("Progressing", "generation " .. tostring(generation) ..
                   " not yet observed by the controller")
  end
  local phase = obj.status.phase
  if obj.spec ~= nil and obj.spec.suspend == true then
    return verdict("Suspended", "spec.suspend is set (phase " .. tostring(phase) .. ")")
  end
  local paused = condition("Paused")
  if paused ~= nil and paused.status == "True" then
    return verdict("Suspended", messageOf(paused, "paused"))
  end
  local stalled = condition("Stalled")
  if stalled ~= nil and stalled.status == "True" then
    return verdict("Degraded", messageOf(stalled, "stalled"))
  end
  local ready = condition("Ready")
  if ready ~= nil and ready.status == "False" and not rollout[ready.reason] then
    return verdict("Degraded", tostring(ready.reason) .. ": " .. messageOf(ready, ""))
  end
  local promoted = condition("Promoted")
  if phase == "Failed" then
    return verdict("Degraded", messageOf(promoted, "rolled back"))
  end
  if phase == nil or underWay[phase] then
    return verdict("Progressing", messageOf(condition("Reconciling"),
                                            messageOf(promoted, "rollout under way")))
  end
  return verdict("Healthy", messageOf(promoted, "phase " .. tostring(phase)))
end

return health()
