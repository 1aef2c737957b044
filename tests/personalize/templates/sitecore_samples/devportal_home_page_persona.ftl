<#assign persona_node = getDecisionModelResultNode("Calculate Persona")>
{
  "persona": "${persona_node.outputs[0].persona}"
}