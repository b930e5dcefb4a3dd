-- The script's main chunk never ends: loading it must be stopped by the
-- limits (the job fails at open).
while true do end
function process(rec, ctx) end
